"The ASGI service: every endpoint, errors of one shape, hot reload and bad models, worker processes."
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import onnx
import pandas as pd
import pytest
from onnx import TensorProto, helper, numpy_helper

from retail_workbench.ops.onnx import OPSET, annotate_recommender, build_score_graph
from retail_workbench.ops.service import (BackgroundServer, CatalogSearch, FastRecommender,
                                          ForecastTable, ModelSpec, ServedModels, make_app)

RNG = np.random.default_rng(1)
U = RNG.normal(size=(6, 4)).astype(np.float32)
V = RNG.normal(size=(30, 4)).astype(np.float32)
USERS = [f"u{i}" for i in range(6)]
ITEMS = [f"i{j}" for j in range(30)]
RWB = str(Path(sys.executable).parent / "rwb")
SHAPE = {"error", "status", "parameter"}


def recommender(user_factors=U, item_factors=V, item_ids=ITEMS):
    return annotate_recommender(build_score_graph(user_factors, item_factors), USERS, item_ids)


def propensity_model() -> onnx.ModelProto:
    "p = sigmoid(2a - b) from two one-column inputs, as the propensity exporter lays them out."
    weights = numpy_helper.from_array(np.array([[2.0], [-1.0]], np.float32), "w")
    one = numpy_helper.from_array(np.array(1.0, np.float32), "one")
    nodes = [helper.make_node("Concat", ["a", "b"], ["x"], axis=1),
             helper.make_node("MatMul", ["x", "w"], ["z"]),
             helper.make_node("Sigmoid", ["z"], ["p"]),
             helper.make_node("Sub", ["one", "p"], ["q"]),
             helper.make_node("Concat", ["q", "p"], ["probabilities"], axis=1)]
    graph = helper.make_graph(
        nodes, "propensity",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [None, 1]) for n in ("a", "b")],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, 2])],
        [weights, one])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=9)


CATALOG = pd.DataFrame({"item_id": ["i1", "i2", "i3"], "title": ["red scarf", "blue scarf", "mug"],
                        "brand": ["acme", "acme", "pots"], "category": ["winter", "winter", "home"],
                        "price": [20.0, 15.0, 8.0]})
FORECASTS = pd.DataFrame({"date": pd.date_range("2024-03-01", periods=2).repeat(2),
                          "store_id": ["s1", "s2"] * 2, "item_id": "i1", "forecast": [1.0, 2, 3, 4]})


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("served")
    onnx.save(recommender(), folder / "rec.onnx")
    onnx.save(propensity_model(), folder / "propensity.onnx")
    return folder


@pytest.fixture(scope="module")
def client(files):
    from starlette.testclient import TestClient
    models = ServedModels([ModelSpec("recommender", "recommender", str(files / "rec.onnx")),
                           ModelSpec("propensity", "propensity", str(files / "propensity.onnx")),
                           ModelSpec("search", "search", CatalogSearch(CATALOG)),
                           ModelSpec("forecaster", "forecaster", ForecastTable(FORECASTS))],
                          poll_seconds=0)
    with TestClient(make_app(models, history={"u2": ["i5"]})) as test_client:
        yield test_client


def top(user: int, k: int, leave_out=()):
    scores = U[user] @ V.T
    order = [f"i{j}" for j in np.argsort(-scores)]
    return [i for i in order if i not in leave_out][:k]


def test_recommend_similar_and_exclude_seen(client):
    body = client.get("/recommend?user_id=u1&k=3").json()
    assert [r["item_id"] for r in body["items"]] == top(1, 3) and not body["cold_start"]
    best = top(1, 2)
    body = client.get(f"/recommend?user_id=u1&k=3&exclude={','.join(best)}").json()
    assert [r["item_id"] for r in body["items"]] == top(1, 3, best)
    client.get("/recommend?user_id=u2&k=30")  # u2 has i5 in the store's history: never shown
    assert "i5" not in [r["item_id"] for r in client.get("/recommend?user_id=u2&k=29").json()["items"]]
    shown = client.get("/recommend?user_id=u2&k=29&exclude_seen=false").json()["items"]
    assert "i5" in [r["item_id"] for r in shown]
    cold = client.post("/recommend", json={"recent_items": ["i3", "i4"], "k": 4}).json()
    expected = [f"i{j}" for j in np.argsort(-(V @ V[[3, 4]].mean(0))) if j not in (3, 4)][:4]
    assert cold["cold_start"] and [r["item_id"] for r in cold["items"]] == expected
    popular = client.get("/recommend?user_id=stranger&k=2").json()
    assert popular["cold_start"] and [r["item_id"] for r in popular["items"]] == ["i0", "i1"]
    unit = V / np.linalg.norm(V, axis=1, keepdims=True)
    similar = client.get("/similar?item_id=i7&k=2").json()["items"]
    assert [r["item_id"] for r in similar] == [f"i{j}" for j in np.argsort(-(unit @ unit[7]))[1:3]]


def test_search_propensity_forecast(client):
    found = client.get("/search?q=red+scarf&k=2").json()["items"]
    assert [r["item_id"] for r in found] == ["i1", "i2"] and found[0]["title"] == "red scarf"
    one = client.post("/propensity", json={"session": {"a": 1.0, "b": 0.5}}).json()
    assert one["probability"] == pytest.approx(1 / (1 + np.exp(-1.5)), rel=1e-5)
    batch = client.post("/propensity", json={"sessions": [{"a": 0, "b": 0}, {"a": 0, "b": 2}]})
    assert batch.json()["probabilities"] == pytest.approx([0.5, 1 / (1 + np.exp(2))], rel=1e-5)
    rows = client.get("/forecast?item_id=i1&store_id=s2").json()["forecasts"]
    assert [(r["date"], r["forecast"]) for r in rows] == [("2024-03-01", 2.0), ("2024-03-02", 4.0)]
    assert len(client.get("/forecast?item_id=i1&date=2024-03-02").json()["forecasts"]) == 2


def test_openapi_document_describes_every_route(client):
    from retail_workbench.ops.service import _ENDPOINTS
    document = client.get("/openapi.json").json()
    assert document["openapi"].startswith("3.1")
    assert sorted(document["paths"]) == sorted(set(_ENDPOINTS) - {"/openapi.json"})
    served = {route.path for route in client.app.app.routes}
    assert served == set(_ENDPOINTS)
    k = next(p for p in document["paths"]["/recommend"]["get"]["parameters"] if p["name"] == "k")
    assert k["schema"]["maximum"] == 1000
    assert set(document["paths"]["/propensity"]) == {"post"}
    assert document["components"]["schemas"]["Error"]["required"] == ["error", "status"]


def test_health_ready_models_metrics(client):
    assert client.get("/health").json()["status"] == "ok"
    ready = client.get("/ready").json()
    assert ready["ready"] and sorted(ready["loaded"]) == ["forecaster", "propensity",
                                                          "recommender", "search"]
    assert client.get("/models").json()["recommender"]["kind"] == "recommender"
    client.get("/recommend?user_id=u1")
    text = client.get("/metrics").text
    assert "# TYPE rwb_request_seconds histogram" in text
    assert 'endpoint="/recommend",le="+Inf"}' in text
    assert 'rwb_model_info{' in text and 'name="propensity",kind="propensity"' in text
    counted = [line for line in text.splitlines()
               if line.startswith("rwb_requests_total") and 'endpoint="/ready"' in line]
    assert counted and counted[0].endswith(" 1")


@pytest.mark.parametrize("method, url, body, status, parameter, says", [
    ("GET", "/nothing", None, 404, None, "no endpoint /nothing"),
    ("POST", "/health", b"{}", 405, None, "method POST is not allowed on /health"),
    ("GET", "/propensity", None, 405, None, "use POST"),
    ("GET", "/recommend?user_id=" + "x" * 5000, None, 414, None, "at most 4096"),
    ("POST", "/propensity", b"x" * 1_000_001, 413, None, "at most 1000000"),
    ("GET", "/recommend?user_id=u1&k=0", None, 400, "k", "from 1 to 1000"),
    ("GET", "/recommend?user_id=u1&k=2.5", None, 400, "k", "whole number"),
    ("GET", "/recommend?k=3", None, 400, "user_id", "'user_id' is required"),
    ("GET", "/recommend?user_id=u1&kk=1", None, 400, "kk", "/recommend takes user_id, k"),
    ("GET", "/recommend?user_id=u1&model=other", None, 404, "model", "not served here"),
    ("GET", "/recommend?user_id=u1&exclude_seen=maybe", None, 400, "exclude_seen", "true or false"),
    ("POST", "/recommend", b"[1]", 400, None, "must be a JSON object"),
    ("POST", "/recommend", b"{not json", 400, None, "not valid JSON"),
    ("POST", "/recommend", b'{"recent_items": "a", "features": [1]}', 400, "features", "list of 0"),
    ("GET", "/similar?item_id=nope", None, 404, "item_id", "not in the model's catalogue"),
    ("GET", "/search?q=", None, 400, "q", "'q' is required"),
    ("POST", "/propensity", b'{"session": {"a": 1}}', 422, "b", "lack feature(s) ['b']"),
    ("POST", "/propensity", b'{"session": {"a": "x", "b": 1}}', 422, None, "wrong type"),
    ("POST", "/propensity", b'{"sessions": []}', 400, "sessions", "list of 1 to 1000"),
    ("GET", "/forecast?item_id=i9", None, 404, "item_id", "no forecast for item_id 'i9'"),
    ("GET", "/forecast?item_id=i1&date=soon", None, 400, "date", "must be a date"),
])
def test_every_error_is_json_of_one_shape(client, method, url, body, status, parameter, says):
    answer = client.request(method, url, content=body)
    assert answer.status_code == status and answer.headers["content-type"] == "application/json"
    assert set(answer.json()) == SHAPE, answer.text
    assert (answer.json()["status"], answer.json()["parameter"]) == (status, parameter)
    assert says in answer.json()["error"], answer.json()


def _get(url):
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


class FileRegistry:
    "Alias lookups over a folder of v<N>.onnx files: `champion` is whatever the test sets."
    def __init__(self, folder: Path):
        self.folder, self.champion = folder, None

    def version(self, source):
        return self.champion

    def lineage(self, source, version):
        return [{"table": "interactions", "snapshot_id": f"snap-{version}"}]

    def load(self, spec, version, trusted):
        return FastRecommender(self.folder / f"v{version}.onnx", version=version)


def test_champion_swaps_without_dropping_requests_and_bad_models_never_replace_it(tmp_path):
    onnx.save(recommender(), tmp_path / "v1.onnx")
    onnx.save(recommender(item_factors=np.full_like(V, np.nan)), tmp_path / "v2.onnx")  # smoke fails
    (tmp_path / "v3.onnx").write_bytes(b"not an onnx file")  # fails to load
    onnx.save(propensity_model(), tmp_path / "v4.onnx")     # not a recommender
    onnx.save(recommender(item_factors=-V), tmp_path / "v5.onnx")
    registry = FileRegistry(tmp_path)
    models = ServedModels([ModelSpec("recommender", "recommender", "recommender@champion")],
                          poll_seconds=0, loader=registry.load, registry=registry)
    assert models.refresh() == {} and "no registered version" in models.missing["recommender"]
    registry.champion = "1"
    assert models.refresh() == {"recommender": "1"}
    server = BackgroundServer(make_app(models)).start()
    answers, failures, stop = [], [], threading.Event()

    def hammer():
        while not stop.is_set():
            try:
                answers.append(_get(server.url + "/recommend?user_id=u0&k=1")["items"][0]["item_id"])
            except Exception as err:  # any failed request fails the test
                failures.append(repr(err))

    thread = threading.Thread(target=hammer)
    thread.start()
    try:
        for bad, says in (("2", "no finite scores"), ("3", "InvalidProtobuf"),
                          ("4", "not a servable recommender")):
            registry.champion = bad
            assert models.refresh() == {"recommender": "1"}  # the good one stays
            assert models.rejected["recommender"]["version"] == bad
            assert says in models.rejected["recommender"]["reason"]
        time.sleep(0.2)
        registry.champion = "5"
        assert models.refresh() == {"recommender": "5"} and models.reloads == 1
        assert not models.rejected
        time.sleep(0.2)
    finally:
        stop.set()
        thread.join()
        server.stop()
    assert not failures, failures[:3]
    worst, best = top(0, 1)[0], f"i{int(np.argmin(U[0] @ V.T))}"
    assert answers[0] == worst and answers[-1] == best and set(answers) == {worst, best}
    assert models.describe()["recommender"]["lineage"] == [{"table": "interactions",
                                                             "snapshot_id": "snap-5"}]


def _children(pid: int) -> set[int]:
    found = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found |= {int(p) for p in (task / "children").read_text().split()}
    return {p for p in found if "resource_tracker" not in Path(f"/proc/{p}/cmdline").read_text()}


def test_workers_answer_and_a_killed_worker_is_replaced(files):
    command = [RWB, "serve", "--port", "0", "--workers", "2", "--model", str(files / "rec.onnx"),
               "--history", "none", "--poll", "0"]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        line = server.stdout.readline()
        assert "with 2 worker(s)" in line, line + server.stdout.read()
        url = line.split(" on ")[1].split(" ")[0]
        deadline = time.time() + 60
        while len(_children(server.pid)) < 2:
            assert time.time() < deadline and server.poll() is None
            time.sleep(0.1)
        first = _children(server.pid)
        seen = {_get(url + "/health")["worker"] for _ in range(20)}
        assert seen <= first
        victim, survivor = sorted(first)
        os.kill(victim, signal.SIGKILL)
        for _ in range(20):  # the other worker keeps answering
            assert _get(url + "/recommend?user_id=u1&k=3")["items"][0]["item_id"] == top(1, 1)[0]
        while len(_children(server.pid) - first) < 1:
            assert time.time() < deadline, "the killed worker was not replaced"
            time.sleep(0.1)
        os.kill(survivor, signal.SIGKILL)  # only restarted workers are left to answer
        answered = {_get(url + "/health")["worker"] for _ in range(5)}
        assert answered and not answered & first
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()


class CheapestFirst:
    "A ranker with SearchRanker's `score(pairs)` signature that puts cheaper candidates first."
    def score(self, pairs):
        return -CATALOG.set_index("item_id").loc[pairs["item_id"], "price"].to_numpy()


def test_search_adapter_reorders_the_bm25_candidates_with_the_ranker():
    bm25 = CatalogSearch(CATALOG).search("scarf", 5)
    assert bm25["item_id"].tolist() in (["i1", "i2"], ["i2", "i1"])
    ranked = CatalogSearch(CATALOG, ranker=CheapestFirst(), candidates=2).search("scarf", 5)
    assert ranked["item_id"].tolist() == ["i2", "i1"]  # 15.0 before 20.0; the mug is no candidate
    assert ranked["title"].tolist() == ["blue scarf", "red scarf"]
    assert ranked["price"].tolist() == [15.0, 20.0] and ranked["rank"].tolist() == [1, 2]
