//! Unit tests of the shootout's statistics, PRNG, frames and memory reading.

use super::*;

#[test]
fn nearest_rank_percentiles() {
    let v: Vec<f64> = (1..=100).map(f64::from).collect();
    assert_eq!(percentile(&v, 50.0), Some(50.0));
    assert_eq!(percentile(&v, 95.0), Some(95.0));
    assert_eq!(percentile(&v, 99.0), Some(99.0));
    assert_eq!(percentile(&v, 100.0), Some(100.0));
    assert_eq!(percentile(&v, 0.0), Some(1.0));
    assert_eq!(percentile(&[], 50.0), None);
    assert_eq!(percentile(&[7.0], 99.0), Some(7.0));
    let ten: Vec<f64> = (1..=10).map(f64::from).collect();
    assert_eq!(percentile(&ten, 95.0), Some(10.0));
    assert_eq!(percentile(&ten, 50.0), Some(5.0));
}

#[test]
fn latency_summary_sorts() {
    let l = Latency::of(&[3.0, 1.0, 2.0, 4.0]);
    assert_eq!(l.p50, Some(2.0));
    assert_eq!(l.min, Some(1.0));
    assert_eq!(l.max, Some(4.0));
    assert_eq!(l.mean, Some(2.5));
    assert_eq!(Latency::of(&[]), Latency::default());
}

#[test]
fn prng_is_deterministic_and_in_range() {
    let a: Vec<u64> = {
        let mut p = Prng::new(42);
        (0..5).map(|_| p.next_u64()).collect()
    };
    let b: Vec<u64> = {
        let mut p = Prng::new(42);
        (0..5).map(|_| p.next_u64()).collect()
    };
    assert_eq!(a, b);
    assert_ne!(a, {
        let mut p = Prng::new(43);
        (0..5).map(|_| p.next_u64()).collect::<Vec<_>>()
    });
    // SplitMix64's published first output for seed 0.
    assert_eq!(Prng::new(0).next_u64(), 0xe220_a839_7b1d_cdaf);
    let mut p = Prng::new(7);
    let mut seen = [0usize; 10];
    for _ in 0..10_000 {
        seen[p.below(10)] += 1;
    }
    assert!(seen.iter().all(|&n| n > 800 && n < 1200), "{seen:?}");
}

#[test]
fn frames_are_what_the_js_client_sends() {
    assert_eq!(
        subscribe_frame(),
        r#"{"command":"subscribe","identifier":"{\"channel\":\"BenchmarkChannel\"}"}"#
    );
    assert_eq!(
        broadcast_frame(3, 1234, 4),
        r#"{"command":"message","identifier":"{\"channel\":\"BenchmarkChannel\"}","data":"{\"action\":\"broadcast\",\"payload\":{\"sendTime\":1234,\"id\":3,\"padding\":\"xxxx\"}}"}"#
    );
}

#[test]
fn recognises_deliveries_and_results() {
    let id = r#""{\"channel\":\"BenchmarkChannel\"}""#;
    let delivery = format!(
        r#"{{"identifier":{id},"message":{{"action":"broadcast","payload":{{"sendTime":99,"id":17,"padding":"xx"}}}}}}"#
    );
    assert_eq!(
        parse_delivery(&delivery),
        Some(Delivery {
            id: 17,
            result: false
        })
    );
    let result = delivery.replace(r#""broadcast""#, r#""broadcastResult""#);
    assert_eq!(
        parse_delivery(&result),
        Some(Delivery {
            id: 17,
            result: true
        })
    );
    assert_eq!(parse_delivery(r#"{"type":"welcome"}"#), None);
    assert_eq!(
        parse_delivery(r#"{"type":"ping","message":1700000000}"#),
        None
    );
    assert_eq!(
        parse_delivery(&format!(
            r#"{{"identifier":{id},"type":"confirm_subscription"}}"#
        )),
        None
    );
    // The frame the floor builds from our own command is recognised too.
    let floor = crate::floor::reply_to(&broadcast_frame(5, 1, 3));
    let Some(crate::floor::Reply::Broadcast { all, result }) = floor else {
        panic!("{floor:?}");
    };
    assert_eq!(
        parse_delivery(&all),
        Some(Delivery {
            id: 5,
            result: false
        })
    );
    assert_eq!(
        parse_delivery(&result),
        Some(Delivery {
            id: 5,
            result: true
        })
    );
}

#[test]
fn rss_of_this_process() {
    let kib = rss_kib(std::process::id()).expect("VmRSS of self");
    assert!(kib > 100);
    assert_eq!(rss_kib(u32::MAX), None);
}
