from service.store import CallStore


def test_calls_events_and_utterances_are_kept_and_duplicates_refused(tmp_path):
    store = CallStore(f"sqlite:///{tmp_path / 'calls.db'}")
    assert store.create_call("c1", "a1", "inbound", "13800000000", None, {"encoding": "mulaw"})
    assert not store.create_call("c1", "a2", "inbound", None, None, {})
    store.add_event("c1", "answered", 0.0, None, None)
    store.add_utterance("c1", "agent-0", "agent", 0.5, 2.0, "您好，这里是示例公司。")
    store.end_call("c1", "completed", 30.0)

    reopened = CallStore(f"sqlite:///{tmp_path / 'calls.db'}")
    call = reopened.get_call("c1")
    assert call.agent_id == "a1" and call.status == "completed" and call.duration == 30.0
    assert reopened.list_utterances("c1")[0]["text"] == "您好，这里是示例公司。"
    assert reopened.list_events("c1") == [{"event": "answered", "t": 0.0, "by": None, "target": None}]


def test_calls_left_live_by_a_dead_process_are_marked_interrupted(tmp_path):
    url = f"sqlite:///{tmp_path / 'calls.db'}"
    CallStore(url).create_call("c2", "a1", "inbound", None, None, {})
    assert CallStore(url).mark_live_calls_interrupted() == 1
    assert CallStore(url).get_call("c2").status == "interrupted"
