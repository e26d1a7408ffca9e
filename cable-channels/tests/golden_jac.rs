//! Golden tests of Jac Cloud: the server frames its README quotes and the six recordings of
//! the real Jac Cloud server decode to the expected typed value and encode back to the same
//! JSON value (and bytes).

mod common;

use cable_channels::jac::{
    self, ChangeUserEvent, ChannelId, ClientId, GeneratedId, JacClientEvent, JacServerFrame,
    LocItem, RootId, ValidationError, WalkerError, WalkerEvent, WalkerResponse,
};
use cable_channels::{Object, Value};
use common::{assert_same_value, golden, jsonl, object as o, python_dumps, value as j};

fn s(text: &str) -> String {
    text.to_owned()
}

// ================================================ jac_server_frames.jsonl

fn verr(kind: &str, loc: &[LocItem], msg: &str, input: &str, ctx: Option<&str>) -> ValidationError {
    ValidationError {
        error_type: s(kind),
        loc: loc.to_vec(),
        msg: s(msg),
        input: j(input),
        ctx: ctx.map(o),
        url: Some(format!("https://errors.pydantic.dev/2.10/v/{kind}")),
        extra: Object::new(),
    }
}

fn f(name: &str) -> LocItem {
    LocItem::Field(s(name))
}

fn reply(reports: &str) -> JacServerFrame {
    let Value::Array(reports) = j(reports) else {
        panic!()
    };
    JacServerFrame::WalkerResponse(WalkerResponse {
        status: 200,
        reports,
    })
}

fn jac_frame_expected(name: &str) -> JacServerFrame {
    use JacServerFrame as F;
    let tags = "'connection', 'walker', 'user', 'channel', 'client', 'change_user'";
    match name {
        "walker_response" => reply(r#"[{"echo":7},"second"]"#),
        "walker_response_auth" => reply(r#"[{"echo_auth":5}]"#),
        "walker_response_empty" => reply("[]"),
        "walker_response_coerced" => reply("[5]"),
        "notify_self_then_reply" => reply(r#"["step1","step2"]"#),
        "walker_error_invalid" => F::WalkerError(WalkerError::invalid_request()),
        "walker_error_auth" => F::WalkerError(WalkerError::requires_authentication("echo_report_auth")),
        "walker_error_unauth" => F::WalkerError(WalkerError::requires_unauthentication("echo_report")),
        "walker_error_access" => F::WalkerError(WalkerError::no_access(&RootId::from(
            "n::6b028e084b49d9ccc6934a7d",
        ))),
        "validation_context_missing" => F::ValidationErrors(vec![verr(
            "missing",
            &[f("val")],
            "Field required",
            "{}",
            None,
        )]),
        "validation_event_missing_walker" => F::ValidationErrors(vec![verr(
            "missing",
            &[f("event"), f("walker"), f("walker")],
            "Field required",
            r#"{"type":"walker","response":true}"#,
            None,
        )]),
        "validation_union_tag_invalid" => F::ValidationErrors(vec![verr(
            "union_tag_invalid",
            &[f("event")],
            &format!("Input tag 'xyz' found using 'type' does not match any of the expected tags: {tags}"),
            r#"{"type":"xyz"}"#,
            Some(&format!(
                r#"{{"discriminator":"'type'","tag":"xyz","expected_tags":"{tags}"}}"#
            )),
        )]),
        "validation_union_tag_not_found" => F::ValidationErrors(vec![verr(
            "union_tag_not_found",
            &[f("event")],
            "Unable to extract tag using discriminator 'type'",
            "{}",
            Some(r#"{"discriminator":"'type'"}"#),
        )]),
        "validation_too_short" => F::ValidationErrors(vec![verr(
            "too_short",
            &[f("event"), f("channel"), f("channel_ids")],
            "List should have at least 1 item after validation, not 0",
            "[]",
            Some(r#"{"field_type":"List","min_length":1,"actual_length":0}"#),
        )]),
        "validation_index_loc" => F::ValidationErrors(vec![verr(
            "string_type",
            &[f("event"), f("client"), f("client_ids"), LocItem::Index(0)],
            "Input should be a valid string",
            "1",
            None,
        )]),
        "validation_token_type" => F::ValidationErrors(vec![verr(
            "string_type",
            &[f("event"), f("change_user"), f("token")],
            "Input should be a valid string",
            "123",
            None,
        )]),
        "validation_two_items" => F::ValidationErrors(vec![
            verr(
                "missing",
                &[f("event"), f("user"), f("root_ids")],
                "Field required",
                r#"{"type":"user"}"#,
                None,
            ),
            verr(
                "missing",
                &[f("event"), f("user"), f("data")],
                "Field required",
                r#"{"type":"user"}"#,
                None,
            ),
        ]),
        "validation_not_object" => F::ValidationErrors(vec![verr(
            "model_attributes_type",
            &[f("event")],
            "Input should be a valid dictionary or object to extract fields from",
            "[1,2]",
            None,
        )]),
        "traceback_json" => F::Traceback(vec![
            s("Traceback (most recent call last):\n"),
            s("json.decoder.JSONDecodeError: Expecting value: line 1 column 1 (char 0)\n"),
        ]),
        "progress_0" => F::Notification(j(r#"{"type":"progress","progress":"0%"}"#)),
        "progress_100" => F::Notification(j(r#"{"type":"progress","progress":"100%"}"#)),
        "doc_notify_chat" => F::Notification(j(r#"{"type":"chat","data":{"message":"string"}}"#)),
        "doc_notify_progress" => F::Notification(j(
            r#"{"any_field":"for_progress","progress":"0%","status":"started"}"#,
        )),
        "json_fidelity" => {
            let mut obj = Object::new();
            let float = |f| Value::Number(serde_json::Number::from_f64(f).unwrap());
            obj.insert(s("s"), "héllo ✓ 😀".into());
            obj.insert(s("slash"), "/".into());
            obj.insert(s("nul"), "\u{0}".into());
            obj.insert(s("html"), "</script>".into());
            obj.insert(s("f"), float(1.0));
            obj.insert(s("nz"), float(-0.0));
            obj.insert(s("big"), float(1.5e300));
            obj.insert(s("min"), i64::MIN.into());
            obj.insert(s("max"), u64::MAX.into());
            F::Notification(Value::Object(obj))
        }
        other => panic!("no expectation for {other}"),
    }
}

#[test]
fn jac_server_frames_from_the_reference_readme() {
    let lines = jsonl("jac_server_frames.jsonl");
    assert_eq!(lines.len(), 24);
    for line in lines {
        let name = line["name"].as_str().unwrap();
        let frame = line["frame"].as_str().unwrap();
        let decoded = JacServerFrame::decode(frame).unwrap();
        assert_eq!(decoded, jac_frame_expected(name), "{name}");
        assert_eq!(decoded.encode(), frame, "{name}: bytes");
        if name == "json_fidelity" {
            // orjson writes the exponent without `+`: same value, one byte shorter.
            let orjson = frame.replace("1.5e+300", "1.5e300");
            assert_eq!(JacServerFrame::decode(&orjson).unwrap(), decoded);
        }
    }
}

// ======================================================= recordings (*.jsonl)

const ALICE_TOKEN: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpZCI6IjZiMDI4ZTA4NGI0OWQ5Y2NjNjkzNGE3ZSIsImVtYWlsIjoiYWxpY2VAamFjcmVmLmlvIiwicm9vdF9pZCI6IjZiMDI4ZTA4NGI0OWQ5Y2NjNjkzNGE3ZCIsImlzX2FjdGl2YXRlZCI6dHJ1ZSwiaXNfYWRtaW4iOmZhbHNlLCJleHBpcmF0aW9uIjoxNzk1MzcyNzQ0LCJzdGF0ZSI6Im1FV2hWbWN3In0.mS0nJrSJ9eXUah0h3_atrz1XK1OEmJcLRddM1n1kCLo";
const PUB: &str = "n::000000000000000000000001";
const ALICE: &str = "n::6b028e084b49d9ccc6934a7d";
const BOB: &str = "n::6b028e084b49d9ccc6934a7f";

/// What one recorded frame must decode to.
enum Want {
    Out(JacClientEvent),
    In(JacServerFrame),
}

fn gid(text: &str) -> GeneratedId {
    text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn conn(client: &str, root: &str, channel: &str) -> Want {
    let root = RootId::from(root);
    assert!(root.object_id().is_some(), "{root} is n:<name>:<24 hex>");
    Want::In(JacServerFrame::Connection(jac::ConnectionInfo {
        client_id: ClientId::Generated(gid(client)),
        root_id: root,
        channel_id: ChannelId::from(channel),
        extra: Object::new(),
    }))
}

fn note(json: &str) -> Want {
    Want::In(JacServerFrame::Notification(j(json)))
}

fn user(roots: &[&str], data: &str) -> Want {
    Want::Out(JacClientEvent::user(
        roots.iter().map(|r| RootId::from(*r)).collect(),
        o(data),
    ))
}

fn channel(ids: &[&str], data: &str) -> Want {
    Want::Out(JacClientEvent::channel(
        ids.iter().map(|c| ChannelId::from(*c)).collect(),
        o(data),
    ))
}

fn change_user(token: Option<Option<&str>>) -> Want {
    Want::Out(JacClientEvent::ChangeUser(ChangeUserEvent {
        token: token.map(|t| t.map(str::to_owned)),
        extra: Object::new(),
    }))
}

fn walker(context: Option<&str>) -> Want {
    Want::Out(JacClientEvent::Walker(WalkerEvent {
        walker: s("echo_report"),
        response: Some(true),
        context: context.map(o),
        node: None,
        extra: Object::new(),
    }))
}

fn recording_expected(file: &str) -> Vec<Want> {
    let traceback = || -> Want {
        let text = golden("user_event.jsonl");
        let line = text.lines().find(|l| l.contains("Traceback")).unwrap();
        let frame = common::value(line)["frame"].as_str().unwrap().to_owned();
        let lines: Vec<String> = common::value(&frame)["error"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap().to_owned())
            .collect();
        assert_eq!(lines.len(), 5);
        assert_eq!(lines[0], "Traceback (most recent call last):\n");
        assert_eq!(
            lines[4],
            "ValueError: [garbage] is not a valid reference!\n"
        );
        Want::In(JacServerFrame::Traceback(lines))
    };
    match file {
        "connect_public.jsonl" => vec![conn(
            "1795329544:c4184da5fc344eff8ae4e0b3b9bf6213",
            PUB,
            "1795329544:d1dea263a528460eb938df3a783d57ed",
        )],
        "connect_authenticated.jsonl" => vec![
            conn(
                "1795329547:ae04b91cf4804052a1207db8960c8885",
                ALICE,
                "1795329547:3a5b0f4d5d7b4510afb4741fc5cdf3fe",
            ),
            conn(
                "1795329547:24d75dbbdd714685bf02db2ecd2fce2e",
                ALICE,
                "1795329547:1423fef9ab3649a9ab0bec170d98b41f",
            ),
        ],
        "walker_response_true.jsonl" => vec![
            conn(
                "1795329551:c1efe67c232947e7b2e411080ab9b54e",
                PUB,
                "1795329551:c3a49c06c35c4eb3a8724f3185f95637",
            ),
            walker(Some(r#"{"val":7}"#)),
            Want::In(reply(r#"[{"echo":7},"second"]"#)),
            walker(None),
            Want::In(reply(r#"[{"echo":1},"second"]"#)),
            walker(Some(r#"{"val":3,"zzz":1}"#)),
            Want::In(reply(r#"[{"echo":3},"second"]"#)),
        ],
        "user_event.jsonl" => vec![
            conn(
                "1795329563:64f8045938694313812d5610f92f6425",
                ALICE,
                "1795329563:11d4eb2360044d7ca5c5b959926342ae",
            ),
            conn(
                "1795329563:69bbea4b9af049fdbcc7798ed20b2095",
                BOB,
                "1795329563:b38dce7eba7f4ef1b55a0bf2dfdaafec",
            ),
            conn(
                "1795329563:a928391eee764f28be5a5da1a049ac34",
                BOB,
                "1795329563:b153a6107ccb4fb5838df29c89883b06",
            ),
            conn(
                "1795329563:f15e842820634c73b5b817dfa44b55fe",
                PUB,
                "1795329563:ea15f42cdc444a8f940f73e0e15c0772",
            ),
            user(&[BOB], r#"{"type":"chat","data":{"m":"hi bob"}}"#),
            note(r#"{"type":"chat","data":{"m":"hi bob"}}"#),
            note(r#"{"type":"chat","data":{"m":"hi bob"}}"#),
            user(&[ALICE, BOB], r#"{"m":2}"#),
            note(r#"{"m":2}"#),
            note(r#"{"m":2}"#),
            note(r#"{"m":2}"#),
            user(&[BOB, BOB], r#"{"m":3}"#),
            note(r#"{"m":3}"#),
            note(r#"{"m":3}"#),
            note(r#"{"m":3}"#),
            note(r#"{"m":3}"#),
            user(&["n::0123456789abcdef01234567"], r#"{"m":4}"#),
            user(&[PUB], r#"{"m":5}"#),
            note(r#"{"m":5}"#),
            user(&["garbage"], r#"{"m":6}"#),
            traceback(),
            user(&["n:Root:6b028e084b49d9ccc6934a7f"], r#"{"m":7}"#),
            note(r#"{"m":7}"#),
            note(r#"{"m":7}"#),
            user(&[BOB], "{}"),
            note("{}"),
            note("{}"),
        ],
        "channel_event.jsonl" => vec![
            conn("1795329569:b8773d7b20fc46a38679c603329b8369", PUB, "room1"),
            conn("1795329569:b9cbaa17abbe45cc98a4e6f70523a323", PUB, "room1"),
            conn("1795329569:f3c1a22674fd4d18b193a11eca2acfff", PUB, "room2"),
            conn(
                "1795329569:fc5fd4802aeb4102aab0e9e9b52801d9",
                PUB,
                "1795329569:075ca05bc4c049dcac185984337de72f",
            ),
            channel(&["room1"], r#"{"type":"chat","data":{"m":"hello room1"}}"#),
            note(r#"{"type":"chat","data":{"m":"hello room1"}}"#),
            note(r#"{"type":"chat","data":{"m":"hello room1"}}"#),
            channel(&["room1", "room2"], r#"{"m":"both"}"#),
            note(r#"{"m":"both"}"#),
            note(r#"{"m":"both"}"#),
            note(r#"{"m":"both"}"#),
            channel(&["nobody-here"], r#"{"m":"void"}"#),
            channel(
                &["1795329569:075ca05bc4c049dcac185984337de72f"],
                r#"{"m":"self-channel"}"#,
            ),
            note(r#"{"m":"self-channel"}"#),
        ],
        "change_user.jsonl" => {
            let a = "1795329575:f851d917ccb145c8adab8a12ab783073";
            let a_ch = "1795329575:43b9c492a90b4638a60075dbb0aa63aa";
            let bearer = format!("Bearer {ALICE_TOKEN}");
            vec![
                conn(a, PUB, a_ch),
                conn(
                    "1795329575:ccb82862a5e84aadb84867b4fca26907",
                    BOB,
                    "1795329575:5faa0789d3854eabb908b9db2825f742",
                ),
                change_user(Some(Some(&bearer))),
                conn(a, ALICE, a_ch),
                user(&[ALICE], r#"{"m":"hi alice"}"#),
                note(r#"{"m":"hi alice"}"#),
                user(&[PUB], r#"{"m":"public blast"}"#),
                change_user(None),
                conn(a, PUB, a_ch),
                user(&[ALICE], r#"{"m":"hi alice 2"}"#),
                user(&[PUB], r#"{"m":"public blast 2"}"#),
                note(r#"{"m":"public blast 2"}"#),
                change_user(Some(Some(ALICE_TOKEN))),
                conn(a, ALICE, a_ch),
                change_user(Some(None)),
                conn(a, PUB, a_ch),
            ]
        }
        other => panic!("no expectation for {other}"),
    }
}

#[test]
fn jac_recordings_decode_and_encode_back() {
    let files = [
        "connect_public.jsonl",
        "connect_authenticated.jsonl",
        "walker_response_true.jsonl",
        "user_event.jsonl",
        "channel_event.jsonl",
        "change_user.jsonl",
    ];
    let mut frames = 0;
    for file in files {
        let events: Vec<_> = jsonl(file)
            .into_iter()
            .filter(|e| matches!(e["dir"].as_str(), Some("in" | "out")))
            .collect();
        let wants = recording_expected(file);
        assert_eq!(events.len(), wants.len(), "{file}: frame count");
        for (i, (event, want)) in events.iter().zip(wants).enumerate() {
            assert_eq!(event["opcode"], "text");
            let frame = event["frame"].as_str().unwrap();
            let at = format!("{file} frame {i}: {frame}");
            match (event["dir"].as_str().unwrap(), want) {
                ("out", Want::Out(expected)) => {
                    let ev = JacClientEvent::decode(frame).unwrap();
                    assert_eq!(ev, expected, "{at}");
                    // The recorder's client wrote Python json.dumps: same keys, same
                    // order, ", " and ": " separators.
                    assert_eq!(python_dumps(&ev), frame, "{at}");
                    assert_same_value(&ev.encode(), frame);
                }
                ("in", Want::In(expected)) => {
                    let got = JacServerFrame::decode(frame).unwrap();
                    assert_eq!(got, expected, "{at}");
                    assert_eq!(got.encode(), frame, "{at}: bytes");
                }
                (dir, _) => panic!("{at}: direction {dir} does not match the expectation"),
            }
            frames += 1;
        }
    }
    assert_eq!(frames, 67);
}

#[test]
fn recorded_ids_have_the_documented_shapes() {
    for file in [
        "connect_public.jsonl",
        "user_event.jsonl",
        "channel_event.jsonl",
        "change_user.jsonl",
    ] {
        for e in jsonl(file) {
            if e["dir"] != "in" {
                continue;
            }
            let frame = e["frame"].as_str().unwrap();
            if let Ok(JacServerFrame::Connection(info)) = JacServerFrame::decode(frame) {
                let g = info
                    .client_id
                    .generated()
                    .expect("client ids are generated");
                assert!((1_700_000_000..2_000_000_000).contains(&g.unix_seconds));
                assert_eq!(info.client_id.to_string().len(), 10 + 1 + 32);
                assert!(info.root_id.object_id().is_some());
                match &info.channel_id {
                    ChannelId::Generated(_) => {}
                    ChannelId::Named(n) => assert!(n.starts_with("room")),
                }
            }
        }
    }
    // Forms the recordings use that are not generated ids stay representable.
    assert_eq!(
        ClientId::from("1700000000:deadbeef"),
        ClientId::Other(s("1700000000:deadbeef"))
    );
    assert_eq!(RootId::from("garbage"), RootId::Other(s("garbage")));
    let named = RootId::from("n:Root:6b028e084b49d9ccc6934a7f");
    assert!(named.same_node(&RootId::from(BOB)));
    assert_eq!(named.to_string(), "n:Root:6b028e084b49d9ccc6934a7f");
    assert_eq!(
        jac::websocket_path(Some("my room/1")),
        "/websocket?channel_id=my%20room%2F1"
    );
    assert_eq!(jac::websocket_path(None), "/websocket");
}
