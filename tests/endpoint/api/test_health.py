async def test_live_answers_ok(api):
    r = await api.get("/health/live")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
