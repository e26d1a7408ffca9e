//! The in-memory history's footprint, counted: at most the payload plus 64
//! bytes per message (the bound of cable-fixtures/BENCHMARKS.md's
//! `history_bytes_per_message` row), here on 1,000 messages × 100 streams.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Duration;

use cable_proto::server::StreamHistory;

struct Counting;

thread_local! {
    static ON: Cell<bool> = const { Cell::new(false) };
    static LIVE: Cell<isize> = const { Cell::new(0) };
}

fn counting() -> bool {
    ON.try_with(Cell::get).unwrap_or(false)
}

// SAFETY: every call is forwarded to the system allocator unchanged; the
// counters are thread-local cells with const initializers (no allocation).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if counting() {
            LIVE.with(|l| l.set(l.get() + layout.size() as isize));
        }
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if counting() {
            LIVE.with(|l| l.set(l.get() - layout.size() as isize));
        }
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if counting() {
            LIVE.with(|l| l.set(l.get() + new_size as isize - layout.size() as isize));
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn history_holds_at_most_the_payload_and_64_bytes_per_message() {
    let payload = r#"{"text":"a typical chat message","n":1234567}"#;
    let names: Vec<String> = (0..100).map(|i| format!("chat_{i}")).collect();
    let t = Duration::from_secs(1_700_000_000);
    LIVE.with(|l| l.set(0));
    ON.with(|o| o.set(true));
    let mut history = StreamHistory::new("ep01", 1_000, Duration::from_secs(300));
    // One more round than the bound: the oldest are dropped.
    for _ in 0..1_001 {
        for name in &names {
            history.append(name, payload, t);
        }
    }
    ON.with(|o| o.set(false));
    let held = LIVE.with(Cell::get);
    assert_eq!(history.len(), 100_000);
    assert_eq!(history.payload_bytes(), 100_000 * payload.len());
    let per_message = held as f64 / history.len() as f64;
    assert!(
        per_message <= payload.len() as f64 + 64.0,
        "{per_message:.1} bytes per message"
    );
}
