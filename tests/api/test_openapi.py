"""/openapi.json documents every path and method of the v1 contract (../shared/API.md)."""

CONTRACT = {
    "/api/v1/health": {"get"},
    "/api/v1/runs": {"get", "post"},
    "/api/v1/runs/{run_id}": {"get", "patch"},
    "/api/v1/runs/{run_id}/metrics": {"post"},
    "/api/v1/runs/{run_id}/metrics/{key}": {"get"},
    "/api/v1/runs/{run_id}/forecast/{key}": {"get"},
    "/api/v1/projects/{project}/scaling-fits": {"post"},
    "/api/v1/scaling-fits/{fit_id}": {"get"},
    "/api/v1/scaling-fits/{fit_id}/predict": {"post"},
    "/api/v1/projects/{project}/stop-policy": {"put"},
    "/api/v1/projects/{project}/alert-rules": {"post"},
    "/api/v1/projects/{project}/alerts": {"get"},
}


def test_every_contract_path_is_documented_with_a_response_schema(client):
    doc = client.get("/openapi.json").json()
    paths = {p.replace("{key:path}", "{key}"): ops for p, ops in doc["paths"].items()}
    for path, methods in CONTRACT.items():
        assert path in paths, path
        assert methods <= set(paths[path]), (path, set(paths[path]))
        for method in methods:
            responses = paths[path][method]["responses"]
            ok = next(code for code in responses if code.startswith("2"))
            assert "content" in responses[ok] or ok == "204", (path, method)


def test_the_metrics_body_is_documented_although_it_is_parsed_by_hand(client):
    doc = client.get("/openapi.json").json()
    body = doc["paths"]["/api/v1/runs/{run_id}/metrics"]["post"]["requestBody"]
    schema = body["content"]["application/json"]["schema"]
    assert "rows" in schema["properties"]
