#!/usr/bin/env python3
"""Writes the seed inputs of every target into fuzz/corpus/<target>/.

Seeds come from the transcript corpus (cable-fixtures/transcripts and
scenarios), the protocol notes and seeds of ../shared, and hand-written
operation sequences for the structured targets (their byte layout mirrors
the decoders in fuzz/src/{server_ops,hub,timers,reference_app}.rs).

Run from anywhere: python3 fuzz/seeds/make-seeds.py. Then minimise with
`cargo fuzz cmin <target>` (see fuzz/README.md).
"""
import hashlib, json, os, pathlib, re

FUZZ = pathlib.Path(__file__).resolve().parent.parent
ROOT = FUZZ.parent
SHARED = ROOT.parent / "shared"

def write(target, data):
    if isinstance(data, str):
        data = data.encode()
    d = FUZZ / "corpus" / target
    d.mkdir(parents=True, exist_ok=True)
    name = "seed-" + hashlib.sha1(data).hexdigest()[:16]
    (d / name).write_bytes(data)

jsonl = sorted(p for p in (ROOT / "cable-fixtures").glob("transcripts/**/*.jsonl") if "jac" not in p.parts) + sorted(
    (ROOT / "cable-fixtures" / "scenarios").glob("*.jsonl"))

# transcript: every transcript and scenario script, whole.
for p in jsonl:
    write("transcript", p.read_bytes())

# command_parser: every frame a client sent; channels_decode: every frame.
for p in jsonl:
    for line in p.read_text().splitlines():
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except ValueError:
            continue
        frame = event.get("frame")
        if isinstance(frame, str):
            write("command_parser" if event.get("dir") == "out" else "channels_decode", frame)
            if event.get("dir") == "out":
                write("channels_decode", frame)
# The docs' examples: JSON objects on one line in the protocol notes and seeds.
for md in [SHARED / "PROTOCOL.md", *sorted((SHARED / "seeds").glob("*.md"))]:
    if not md.exists():
        continue
    for m in re.finditer(r"\{[^\n`]*\}", md.read_text()):
        text = m.group(0)
        try:
            json.loads(text)
        except ValueError:
            continue
        write("command_parser" if '"command"' in text else "channels_decode", text)

def b(*items):
    out = bytearray()
    for item in items:
        if isinstance(item, int):
            out.append(item)
        elif isinstance(item, str):
            raw = item.encode()
            out.append(len(raw))
            out += raw
        else:
            out += bytes(item)
    return bytes(out)

# server_ops: config (limits, ping, allow_any) then operations.
DEFAULT = [3, 2, 3, 3, 3, 6, 0, 1, 1, 3, 0]
SMALL = [1, 1, 1, 1, 1, 4, 1, 2, 1, 1, 0]
OPEN, CONNECT, ACCEPT_CONN, REJECT_CONN, TEXT, BINARY, CLOSE, WRITTEN, ADVANCE = 0, 2, 4, 5, 6, 10, 11, 12, 13
TIMEOUT, AT_DEADLINE, ACCEPT_SUB, REJECT_SUB, ABANDON, STALE, UNSUB = 14, 15, 16, 18, 19, 20, 21
STREAM_FROM, STOP_STREAM, STOP_ALL, TRANSMIT, BROADCAST, SEND, SEND_ID = 22, 23, 24, 25, 26, 27, 28
DISCONNECT, RESTART_ETC, USE_STALE = 29, 30, 31
def subscribe(conn, ident): return [TEXT, conn, 0, ident]
def message(conn, ident, data): return [TEXT, conn, 3, ident, 1, data]
def ops(config, *seq):
    out = bytearray(config)
    for op in seq:
        out += b(*op)
    return bytes(out)
chat = [
    [CONNECT, 0], subscribe(0, 0), [ACCEPT_SUB, 0, 1, 0, 0, 1, 0],
    [CONNECT, 1], subscribe(1, 0), [ACCEPT_SUB, 0, 2, 0, 0, 0, 1, 0],
    message(0, 0, 0), [BROADCAST, 0, 2, 1, 0], [BROADCAST, 0, 1, 1, 5],
    [BROADCAST, 0, 0, 1, 1, 6], [AT_DEADLINE], [WRITTEN, 0, 0xff, 0xff, 1],
    [TRANSMIT, 0, 2], [STREAM_FROM, 1, 3, 1], [BROADCAST, 3, 2, 0, "[1,2]"],
    [STOP_STREAM, 1, 0], [STOP_ALL, 0], [UNSUB, 0], [CLOSE, 0], [CLOSE, 0],
]
write("server_ops", ops(DEFAULT, *chat))
write("server_ops", ops(SMALL, *chat))
write("server_ops", ops(DEFAULT,
    [OPEN, 0, 0], [TEXT, 0, 0, 1], [TEXT, 0, 3, 1, 1, 0], [TEXT, 0, 2, 1], [TEXT, 0, 4, '{"command":"subscribe"}'],
    [ACCEPT_CONN, 0, 1], [ACCEPT_SUB, 0, 1, 1, 0, 0], [SEND, 0], [SEND_ID, 1],
    [OPEN, 5, 1], [OPEN, 2, 2], [REJECT_CONN, 1], [STALE, 0, 0], [USE_STALE, 0, 0],
    [ADVANCE, 0xb8, 0x0b], [TIMEOUT], [DISCONNECT, 0, 2, 1], [USE_STALE, 1, 2],
    [CONNECT, 2], [RESTART_ETC, 0]))
write("server_ops", ops(SMALL,
    [OPEN, 0, 0], [TEXT, 0, 5, 9, 0], [TEXT, 0, 0, 0], [TEXT, 0, 0, 1], [TEXT, 0, 0, 2],
    [ACCEPT_CONN, 0, 0], [ABANDON, 0], [REJECT_SUB, 0], [CONNECT, 0], subscribe(1, 5),
    [ACCEPT_SUB, 0, 1, 6, 1, 0], [BROADCAST, 6, 1, 1, 5], [BINARY, 1, 7], [AT_DEADLINE],
    [AT_DEADLINE], [RESTART_ETC, 1, 0, 1]))

# server_ops: performs answered (a perform's outcome: a flags byte, then its
# parts, see Outcome::read in fuzz/src/harness.rs), vetoed or left pending,
# and joins with envelopes.
COMPLETE, VETO, JOIN_LEAVE = 32, 34, 35
OUTCOME = [76, 0, 1, 0, 0, 0, 1, 1]        # start s0 raw, transmit, broadcast except sender
OUTCOME_STOP_BYE = [3, 1, 0]               # stop all, stop s1, then a disconnect
write("server_ops", ops(DEFAULT,
    *chat[:6], message(0, 0, 0), [COMPLETE, 0, *OUTCOME], [JOIN_LEAVE, 1, 0, 0, 1],
    [JOIN_LEAVE, 0, 0, 0, 0], message(1, 0, 0), subscribe(1, 4), message(1, 0, 1), [VETO, 0],
    [ACCEPT_SUB, 0, 1, 3, 0, 0], [BROADCAST, 0, 2, 1, 0], [BROADCAST, 0, 1, 1, 5],
    message(0, 0, 0), [COMPLETE, 0, *OUTCOME_STOP_BYE, 0, 1, 1], [JOIN_LEAVE, 1, 0, 2, 0],
    [BROADCAST, 0, 2, 1, 0], message(1, 0, 0), [CLOSE, 1], [STALE, 0, 0], [USE_STALE, 0, 8]))

# hub: one byte of queue bound, then operations.
H_CONNECT, H_SUB, H_UNSUB_CMD, H_ACCEPT, H_REJECT, H_STREAM_FROM, H_STOP, H_STOP_ALL = 0, 2, 5, 6, 8, 9, 10, 11
H_UNSUB, H_BROADCAST, H_SEND_ID, H_CLOSE, H_WRITTEN, H_TRANSMIT = 12, 13, 16, 17, 18, 19
def hub(bound, *seq):
    out = bytearray([bound])
    for op in seq:
        out += b(*op)
    return bytes(out)
fan = [
    [H_CONNECT, 0], [H_CONNECT, 1], [H_CONNECT, 0],
    [H_SUB, 0, 0], [H_ACCEPT, 0, 2, 0, 1, 1, 1], [H_SUB, 1, 0], [H_ACCEPT, 0, 1, 0, 1],
    [H_SUB, 2, 1], [H_ACCEPT, 0, 1, 0, 0], [H_SUB, 2, 2], [H_ACCEPT, 0, 1, 0, 0],
    [H_BROADCAST, 0, 2, 1, 0], [H_BROADCAST, 0, 0, 1, 1, 1], [H_BROADCAST, 0, 1, 1, 7],
    [H_BROADCAST, 1, 2, 1, 6], [H_STREAM_FROM, 0, 3, 0], [H_BROADCAST, 3, 2, 0, '{"n":1}'],
    [H_SEND_ID, 0], [H_STOP, 1, 0], [H_BROADCAST, 0, 2, 1, 3], [H_UNSUB_CMD, 2, 1],
    [H_STOP_ALL, 0], [H_UNSUB, 1], [H_CLOSE, 1, 0, 2, 1], [H_CLOSE, 2, 0, 1], [H_CLOSE, 0, 0],
    [H_BROADCAST, 0, 2, 1, 0],
]
write("hub", hub(2, *fan))
H_MESSAGE, H_COMPLETE, H_VETO, H_JOIN_LEAVE = 20, 21, 23, 24
write("hub", hub(2, *fan[:11], [H_JOIN_LEAVE, 0, 0, 0, 0], [H_JOIN_LEAVE, 1, 0, 0, 1],
    [H_JOIN_LEAVE, 2, 0, 0, 2], [H_MESSAGE, 0, 0, 0], [H_COMPLETE, 0, *OUTCOME],
    [H_BROADCAST, 0, 2, 1, 0], [H_BROADCAST, 0, 1, 1, 7], [H_MESSAGE, 1, 0, 1], [H_VETO, 0],
    [H_MESSAGE, 1, 0, 0], [H_COMPLETE, 0, 0x80 | 64, 0, 0, 0, 0, 5, 1, 1], [H_JOIN_LEAVE, 0, 0, 2, 1, 1],
    [H_BROADCAST, 0, 0, 1, 1, 6], [H_CLOSE, 0, 0], [H_BROADCAST, 0, 2, 1, 0]))
write("hub", hub(0, *fan, [H_WRITTEN, 0, 0xff, 0xff, 1], *fan))

# timers: config (flags: 1 confirm_when_streams_ready, 2 hold overflow ignored;
# connect, subscribe, perform, upstream timeouts as indices of TIMEOUTS
# [none, 0, 1 ms, 50 ms, 3 s, u64::MAX s]; ping [1 ms, 250 ms, 3 s, 1 h];
# held frames [1, 4, 64]), then operations (fuzz/src/timers.rs).
T_OPEN, T_ACCEPT, T_REJECT, T_SEND, T_ANSWER_SUB, T_ANSWER_PERFORM, T_LATE = 0, 2, 4, 5, 8, 10, 12
T_EXPIRY, T_REFRESH, T_READY, T_BROADCAST, T_ADVANCE, T_TIMEOUT, T_CLOSE, T_MISC = 13, 14, 15, 16, 17, 19, 21, 22
def timers(config, *seq):
    out = bytearray(config)
    for op in seq:
        out += bytes(op)
    return bytes(out)
t_session = [
    [T_OPEN, 1, 0], [T_OPEN, 0, 7],                      # Action Cable, custom 7
    [T_SEND, 1, 0, 0], [T_SEND, 0, 0, 0], [T_SEND, 0, 4, 0],  # held before the accept
    [T_ADVANCE, 1, 1],                                   # 1 ms
    [T_ACCEPT, 0, 0, 3, 1], [T_ACCEPT, 0, 0, 4, 1],      # expiries in 3 s and 1 h
    [T_ANSWER_SUB, 0, 0x0c], [T_SEND, 0, 4, 0],          # accept with s0, s1; perform
    [T_MISC, 2, 1, 0], [T_READY, 0], [T_TIMEOUT, 0], [T_READY, 1],
    [T_ANSWER_PERFORM, 0, 0x10], [T_SEND, 0, 5, 0], [T_ANSWER_PERFORM, 0, 2],
    [T_SEND, 0, 6, 0], [T_ADVANCE, 3, 0], [T_TIMEOUT, 0], [T_LATE, 0, 0],
    [T_EXPIRY, 0, 2], [T_REFRESH, 0, 100], [T_BROADCAST, 0, 0], [T_BROADCAST, 1, 1],
    [T_ADVANCE, 4, 1], [T_TIMEOUT, 1], [T_ADVANCE, 4, 0], [T_TIMEOUT, 0],
    [T_SEND, 0, 0, 1], [T_MISC, 1, 0, 0], [T_MISC, 3, 0x10, 0], [T_SEND, 0, 0, 2],
    [T_ANSWER_SUB, 0, 3], [T_TIMEOUT, 3, 0xff, 0], [T_MISC, 0, 1], [T_CLOSE, 0],
    [T_ADVANCE, 5], [T_TIMEOUT, 0], [T_ADVANCE, 6], [T_TIMEOUT, 2], [T_CLOSE, 0],
]
write("timers", timers([1, 4, 3, 2, 3, 2, 2], *t_session))
write("timers", timers([3, 1, 1, 1, 1, 0, 0], *t_session))   # zero timeouts, 1 ms pings
write("timers", timers([0, 0, 0, 0, 0, 3, 1], *t_session))   # no deadlines
write("timers", timers([1, 5, 5, 5, 5, 1, 2], *t_session))   # "never" deadlines
write("timers", timers([1, 2, 2, 2, 1, 0, 0],
    [T_OPEN, 1, 0], [T_OPEN, 1, 0], [T_ADVANCE, 1, 5], [T_TIMEOUT, 0], [T_LATE, 0, 0],
    [T_OPEN, 1, 0], [T_ACCEPT, 0, 0, 6, 0], [T_OPEN, 0, 1], [T_EXPIRY, 0, 0],
    [T_ACCEPT, 0, 1, 0], [T_SEND, 1, 0, 0], [T_ANSWER_SUB, 0, 0x3c], [T_SEND, 1, 4, 0],
    [T_SEND, 1, 4, 0], [T_SEND, 1, 3, 0], [T_ADVANCE, 3, 0], [T_TIMEOUT, 0],
    [T_ADVANCE, 3, 0], [T_TIMEOUT, 0], [T_ANSWER_PERFORM, 0, 0], [T_LATE, 0, 1]))

# reference_app: operations.
R_CONNECT, R_FRAME, R_BINARY, R_CLOSE, R_ADVANCE, R_TIMEOUT, R_CONTROL = 0, 2, 7, 8, 9, 10, 11
def rsub(conn, ident): return [R_FRAME, conn, ident, 0]
def rmsg(conn, ident, action, sel, *rest): return [R_FRAME, conn, ident, 3, action, sel, *rest]
def ref(*seq):
    out = bytearray()
    for op in seq:
        out += b(*op)
    return bytes(out)
write("reference_app", ref(
    [R_CONNECT, 0, 0, 0, 1], [R_CONNECT, 1, 0, 0, 1], rsub(0, 0), rsub(1, 0), rmsg(0, 0, 0, 0, "hi"),
    rmsg(1, 0, 1, 2), rmsg(0, 0, 2, 0, "x"), rmsg(0, 0, 4, 2), rmsg(0, 0, 5, 0, "n"),
    rsub(0, 4), rsub(1, 5), rsub(0, 6), [R_CONTROL, 1, 2, "plain <text>"], [R_CONTROL, 0, 0],
    rsub(1, 7), rmsg(1, 7, 7, 1, 0), rmsg(1, 7, 8, 1, 1), rmsg(1, 7, 9, 2), rmsg(1, 7, 6, 2),
    rsub(0, 8), rmsg(0, 8, 2, 0, "e"), rmsg(0, 8, 10, 0, "b"), rsub(0, 9), rsub(0, 10), rsub(0, 2),
    [R_FRAME, 0, 0, 2], [R_FRAME, 0, 0, 5, "{"], [R_BINARY, 0, 3], [R_TIMEOUT], [R_ADVANCE, 0xff, 0x0f],
    [R_TIMEOUT], [R_CONTROL, 2], [R_CONTROL, 3, 0], [R_CONTROL, 5], [R_CONTROL, 4], [R_CLOSE, 0]))
write("reference_app", ref(
    [R_CONNECT, 3, 0, 0, 1], [R_CONNECT, 2, 1, 3, 0], [R_CONNECT, 4, 2, 1, 1], [R_CONNECT, 2, 3, 2, 0],
    rsub(0, 3), rsub(0, 7), [R_CLOSE, 0], [R_CONTROL, 7, "/nope"]))

# consumer: four jitter picks (indices of JITTER), then operations
# (fuzz/src/consumer.rs): C_SUB [bool: pick, index | len, bytes], C_UNSUB [index],
# C_PERFORM [index, len, action], C_OPEN [subprotocol], C_FRAME [identifier, kind,
# (reason, flag)], C_RAW [len, bytes], C_CLOSE, C_ADVANCE [step, extra ms],
# C_CREDENTIAL [bool: refreshed], C_CONNECT, C_DISCONNECT.
C_SUB, C_UNSUB, C_PERFORM, C_OPEN, C_FRAME, C_RAW, C_CLOSE, C_ADVANCE = 0, 1, 2, 3, 4, 6, 7, 8
C_CREDENTIAL, C_CONNECT, C_DISCONNECT = 9, 10, 11
F_WELCOME, F_WELCOME_SID, F_PING, F_CONFIRM, F_REJECT, F_MESSAGE, F_DISCONNECT = 0, 1, 2, 3, 4, 5, 6
def consumer(jitter, *seq):
    out = bytearray(jitter)
    for op in seq:
        out += b(*op)
    return bytes(out)
c_welcomed = [[C_SUB, 1, 0], [C_SUB, 1, 2], [C_CONNECT], [C_OPEN, 0], [C_FRAME, 0, F_WELCOME_SID],
    [C_FRAME, 0, F_CONFIRM], [C_FRAME, 0, F_MESSAGE], [C_PERFORM, 0, 5, "speak"]]
write("consumer", consumer([0, 1, 0, 1], *c_welcomed,
    [C_ADVANCE, 3, 0], [C_FRAME, 2, F_CONFIRM], [C_ADVANCE, 4, 0], [C_FRAME, 0, F_PING],
    [C_ADVANCE, 4, 0], [C_ADVANCE, 4, 0],                         # stale: close, reopen
    [C_ADVANCE, 3, 0], [C_OPEN, 0], [C_FRAME, 0, F_WELCOME], [C_FRAME, 0, F_CONFIRM],
    [C_FRAME, 0, F_DISCONNECT, 0, 0], [C_ADVANCE, 6, 0], [C_ADVANCE, 6, 0],  # server_restart
    [C_OPEN, 0], [C_FRAME, 0, F_WELCOME], [C_FRAME, 1, F_MESSAGE],
    [C_FRAME, 0, F_DISCONNECT, 2, 1], [C_ADVANCE, 4, 0], [C_CREDENTIAL, 1],    # token_expired
    [C_OPEN, 0], [C_FRAME, 0, F_WELCOME], [C_FRAME, 0, F_REJECT], [C_UNSUB, 0],
    [C_FRAME, 0, F_DISCONNECT, 1, 1], [C_SUB, 0, 3, "{}x"], [C_DISCONNECT]))
write("consumer", consumer([4, 5, 6, 7], *c_welcomed,              # NaN, -1, inf, 1e300
    [C_FRAME, 0, F_DISCONNECT, 2, 2], [C_ADVANCE, 6, 0xff], [C_ADVANCE, 7, 0],  # credential timeout
    [C_CONNECT], [C_OPEN, 1], [C_CONNECT], [C_OPEN, 2], [C_SUB, 1, 1], [C_OPEN, 3]))
write("consumer", consumer([3, 2, 1, 0], *c_welcomed,
    [C_RAW, 0], [C_RAW, 1, "{"], [C_RAW, 18, '{"type":"welcome"}'], [C_FRAME, 3, 7],
    [C_FRAME, 0, 8], [C_FRAME, 0, F_DISCONNECT, 5, 2], [C_CLOSE], [C_CREDENTIAL, 0],
    [C_SUB, 1, 0], [C_SUB, 1, 0], [C_SUB, 1, 1], [C_SUB, 1, 3], [C_SUB, 1, 2], [C_SUB, 1, 0],
    [C_UNSUB, 0], [C_UNSUB, 0], [C_ADVANCE, 2, 0], [C_ADVANCE, 3, 0]))
# dialect, Jac steps: raw frames (step 8: sender, binary bit, length-prefixed bytes) from every
# frame the Jac transcripts' clients sent, and built frames (steps 9-11) over every pick.
J_RAW, J_BUILT, J_CLOSE = 8, 9, 2
for p in sorted((ROOT / "cable-fixtures" / "transcripts" / "jac").glob("**/*.jsonl")):
    seq = bytearray([1, 1])
    for line in p.read_text().splitlines():
        event = json.loads(line)
        if event.get("dir") == "out" and len(event["frame"].encode()) < 200:
            frame = event["frame"].encode()
            seq += bytes([J_RAW, len(seq) % 3, 0, len(frame)]) + frame
    write("dialect", bytes(seq))
for t in range(7):
    seq = bytearray([1, 1])
    for sender in range(3):
        # type t present; every field present with each of its picks in turn.
        for pick in range(4):
            seq += bytes([J_BUILT, sender, t, 1])
            for _field in range(7):
                seq += bytes([1, 2, pick, (pick + 1) % 4, pick])
    seq += bytes([J_CLOSE, 1, 1, J_BUILT, 0, 3, 1, 0, 0, 0, 1, 2, 0, 1])
    write("dialect", bytes(seq))
