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


def test_every_operation_documents_the_error_body_it_answers_with(client):
    """API.md's error model, {"error": {"status", "field", "message"}}, for each error status
    a route may answer, instead of FastAPI's own 422 shape that the handlers never send."""
    doc = client.get("/openapi.json").json()
    error = doc["components"]["schemas"]["ErrorDetail"]
    assert set(error["properties"]) == {"status", "field", "message"}
    for path, ops in doc["paths"].items():
        if not path.startswith("/api/v1/") or path == "/api/v1/health":
            continue
        for method, op in ops.items():
            for status in ("401", "404", "422", "503"):
                ref = op["responses"][status]["content"]["application/json"]["schema"]["$ref"]
                assert ref.endswith("/ErrorOut"), (path, method, status)
