from tests.http.conftest import running_server, gate

ASYNC = """
key: orders
trigger: {type: webhook, path: "orders/{id}"}
nodes:
  - {key: s, type: set, values: {x: "{{$context.data.n}}"}}
"""
SYNC = """
key: calc
trigger: {type: webhook, path: calc, mode: sync, methods: [POST, GET]}
nodes:
  - {key: out, type: end, output: "{{$context}}"}
"""

async def test_smoke():
    async with running_server([ASYNC, SYNC]) as s:
        r = await s.client.post("/api/webhooks/orders/a%2Fb?x=1", json={"n": 1})
        print(r.status_code, r.headers, r.text)
        r = await s.client.post("/api/webhooks/calc?x=1&x=2", files={"f": ("a.txt", b"hello", "text/plain")}, data={"a": "b"})
        print(r.status_code, r.headers, r.text)
        r = await s.client.get("/api/executions")
        print(r.status_code, r.text[:500])
        r = await s.client.delete("/healthz")
        print(r.status_code, r.headers, r.text)
        r = await s.client.post("/api/webhooks/calc", content=b"x" * 2_000_000)
        print(r.status_code, r.headers, r.text)
