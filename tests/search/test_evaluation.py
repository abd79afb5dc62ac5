"""`manage.py evaluate` on a planted catalogue: the right answers are known, so each signal must
score as expected, a broken ranker must score worse, and tuning must find the planted optimum."""

import json

import numpy as np
import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from pipeline.indexing import build_index
from search import services
from search.evaluation import load_judged, run_evaluation, weak_label_queries
from search.evaluation.queries import JudgedSetError
from search.evaluation.report import render_text
from search.index import reset_index_cache
from search.models import Embedding
from tests.factories import ProductFactory, ProductImageFactory, StoreFactory

pytestmark = pytest.mark.django_db
DIM = 16
CONCEPTS = {"navy": 0, "striped": 1, "ceramic": 2, "wooden": 3}
DECOY_AXIS = 8


def axis(i, noise=0.0, seed=0):
    v = np.zeros(DIM, dtype=np.float32)
    v[i] = 1.0
    if noise:
        v += np.random.default_rng(seed).normal(0, noise, DIM).astype(np.float32)
    return v / np.linalg.norm(v)


def plant(product, vector):
    image = ProductImageFactory(product=product)
    Embedding.objects.create(
        asset=image.asset,
        model_name=settings.MEEPO_CLIP_MODEL,
        dim=DIM,
        vector=vector.astype("<f4").tobytes(),
    )


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    # No model is loaded here: the text tower is replaced by planted vectors below.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture
def text_vectors(monkeypatch):
    """encode_text -> the planted concept axis of the query's first known word."""
    mapping = dict(CONCEPTS)

    def encode(text):
        for word in text.lower().split():
            if word in mapping:
                return axis(mapping[word])
        return axis(15)

    monkeypatch.setattr("search.encoder.encode_text", encode)
    return mapping


@pytest.fixture
def catalogue():
    """Two stores. Per concept: 3 products whose image shows it but whose title does not say
    it (only the visual signal finds them), and 2 decoys whose title says it but whose image is
    something else (judged not relevant)."""
    stores = [StoreFactory(slug="alpha"), StoreFactory(slug="beta")]
    relevant = {}
    n = 0
    for word, i in CONCEPTS.items():
        relevant[word] = []
        for k in range(3):
            store = stores[k % 2]
            product = ProductFactory(
                store=store, title=f"Item {n}", category="Home > Things", tags=[f"t{i}"]
            )
            plant(product, axis(i, 0.05, seed=n))
            relevant[word].append(product)
            n += 1
        for k in range(2):
            decoy = ProductFactory(store=stores[k % 2], title=f"{word} box {n}")
            plant(decoy, axis(DECOY_AXIS, 0.05, seed=n))
            n += 1
    report = build_index(force=True)
    assert report.status == "published"
    reset_index_cache()
    return relevant


def judged_file(tmp_path, relevant):
    lines = []
    for word, products in relevant.items():
        ids = [
            products[0].pk,
            products[1].url,
            f"{products[2].store.slug}:{products[2].external_id}",
        ]
        lines.append(
            json.dumps({"query": word, "relevant": ids, "graded": {str(products[0].pk): 3}})
        )
    lines.append("# comments and blank lines are skipped")
    lines.append(json.dumps({"query": "navy", "relevant": [999999], "store": "alpha"}))
    path = tmp_path / "judged.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def overall(report, signal, metric):
    return report["summary"]["overall"][signal][metric]["mean"]


def test_load_judged_resolves_ids_urls_and_store_keys(tmp_path, catalogue):
    queries = load_judged(judged_file(tmp_path, catalogue))
    assert len(queries) == 5
    navy = queries[0]
    assert navy.relevant == {p.pk for p in catalogue["navy"]}
    assert navy.grades[catalogue["navy"][0].pk] == 3
    assert queries[-1].unresolved == ("999999",)
    assert queries[-1].store == "alpha"


def test_malformed_judged_line_names_the_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"query": "a", "relevant": [1]}\n{"query": ""}\n')
    with pytest.raises(JudgedSetError, match="line 2"):
        load_judged(path)


def test_planted_catalogue_scores_each_signal_as_expected(tmp_path, catalogue, text_vectors):
    queries = load_judged(judged_file(tmp_path, catalogue))[:4]
    report = run_evaluation(queries=queries, resamples=200, write=False).report
    assert report["visual_status"] == "ok"
    # The image shows it, the title does not: only the visual signal can find them.
    assert overall(report, "visual", "recall@10") == pytest.approx(1.0)
    assert overall(report, "visual", "mrr") == pytest.approx(1.0)
    assert overall(report, "keyword", "recall@50") == 0.0
    assert overall(report, "keyword", "zero_result") == 0.0  # decoys match the words
    assert overall(report, "fused", "recall@10") == pytest.approx(1.0)
    assert 0 < overall(report, "fused", "ndcg@10") < overall(report, "visual", "ndcg@10")
    assert set(report["summary"]) == {"overall", "(all stores)"}
    est = report["summary"]["overall"]["fused"]["ndcg@10"]
    assert est["low"] <= est["mean"] <= est["high"]
    assert est["n"] == 4


def test_broken_ranker_scores_worse_and_compare_says_so(tmp_path, catalogue, text_vectors):
    queries = load_judged(judged_file(tmp_path, catalogue))[:4]
    good = run_evaluation(queries=queries, resamples=200, write=False).report
    # Break the text tower: every concept is encoded as the next one.
    words = list(CONCEPTS)
    for j, word in enumerate(words):
        text_vectors[word] = CONCEPTS[words[(j + 1) % len(words)]]
    services.clear_caches()
    bad = run_evaluation(queries=queries, resamples=200, previous=good, write=False).report
    assert overall(bad, "visual", "ndcg@10") < overall(good, "visual", "ndcg@10")
    assert overall(bad, "keyword", "ndcg@10") == overall(good, "keyword", "ndcg@10")
    diff = bad["compare"]["diff"]["overall"]["visual"]["ndcg@10"]
    assert diff["paired"]
    assert diff["mean"] < 0
    assert diff["high"] < 0
    assert bad["compare"]["shared_queries"] == 4


def test_tune_finds_the_planted_optimum_and_applies_nothing(tmp_path, catalogue, text_vectors):
    queries = load_judged(judged_file(tmp_path, catalogue))[:4]
    tune = run_evaluation(queries=queries, resamples=50, tune_metric="ndcg@10", write=False)
    result = tune.report["tune"]
    assert result["best"]["ndcg@10"] == pytest.approx(overall(tune.report, "visual", "ndcg@10"))
    assert result["best"]["visual_weight"] > result["best"]["keyword_weight"]
    assert result["best"] != result["baseline"]
    floors = {(r["floor_percentile"], r["floor_margin"]) for r in result["grid"]}
    assert len(floors) == 16  # the relevance floor is searched too
    assert result["baseline"]["floor_margin"] == settings.MEEPO_RELEVANCE_MARGIN
    assert result["gain"] > 0
    assert result["baseline"]["visual_weight"] == services.VISUAL_WEIGHT == 1.0
    assert services.KEYWORD_WEIGHT == 1.0


def test_weak_labels_come_from_each_store_and_say_what_they_measure(catalogue, text_vectors):
    queries = weak_label_queries(sources=("category", "tag"))
    tags = {(q.store, q.query): q for q in queries if q.source == "tag"}
    # Tag "t0" (navy) is on 2 products in alpha and 1 in beta: min_products=2 keeps alpha's only.
    assert ("alpha", "t0") in tags
    assert ("beta", "t0") not in tags
    assert tags[("alpha", "t0")].relevant == {
        p.pk for p in catalogue["navy"] if p.store.slug == "alpha"
    }
    # The category path is searched by its leaf; on 8 of alpha's 12 products it says too
    # little to be kept (max_share 0.5), on 4 of beta's 8 it is kept.
    categories = [(q.store, q.query) for q in queries if q.source == "category"]
    assert categories == [("beta", "Things")]
    report = run_evaluation(queries=queries, resamples=50, write=False).report
    assert "agreement" in report["note"]
    assert "not truth" in report["note"]
    assert {"overall", "alpha"} <= set(report["summary"])


def test_command_writes_json_text_and_html(tmp_path, catalogue, text_vectors, capsys):
    path = judged_file(tmp_path, catalogue)
    call_command("evaluate", "--judged", str(path), "--resamples", "50", "--tune")
    out = capsys.readouterr().out
    assert "overall visual" in out
    assert "relevance floor on ndcg@10 (nothing applied)" in out
    runs = sorted((settings.MEEPO_DATA_DIR / "evaluation").iterdir())
    assert len(runs) == 1
    report = json.loads((runs[0] / "report.json").read_text())
    assert report["summary"]["alpha"]["visual"]["recall@10"]["n"] == 1
    html = (runs[0] / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 2
    assert "<script" not in html
    assert (runs[0] / "report.txt").read_text().startswith("Model ")
    call_command("evaluate", "--judged", str(path), "--resamples", "50", "--compare", str(runs[0]))
    assert "Difference to the run of" in capsys.readouterr().out
    call_command("evaluate", "--judged", str(path), "--dry-run", "--resamples", "10")
    assert len(list((settings.MEEPO_DATA_DIR / "evaluation").iterdir())) == 2


def test_command_refuses_unusable_arguments(tmp_path, db):
    with pytest.raises(CommandError) as err:
        call_command("evaluate", "--judged", str(tmp_path / "missing.jsonl"))
    assert err.value.returncode == 2
    with pytest.raises(CommandError) as err:
        call_command("evaluate", "--weak-sources", "colour")
    assert err.value.returncode == 2
    with pytest.raises(CommandError, match="nothing to evaluate"):
        call_command("evaluate")


def test_without_an_index_visual_is_empty_and_the_table_says_so(tmp_path, capsys):
    store = StoreFactory(slug="solo")
    for n in range(4):
        ProductFactory(store=store, title=f"Shirt {n}", tags=["navy"] if n < 2 else ["red"])
    call_command("evaluate", "--weak", "--weak-sources", "tag", "--resamples", "20", "--dry-run")
    out = capsys.readouterr().out
    assert "Visual search was NOT available" in out
    assert not (settings.MEEPO_DATA_DIR / "evaluation").exists()
    report = run_evaluation(queries=weak_label_queries(sources=("tag",)), write=False).report
    assert overall(report, "visual", "zero_result") == 1.0
    assert overall(report, "keyword", "recall@10") == 1.0


def test_admin_links_the_newest_report_and_only_staff_see_it(
    client, admin_client, tmp_path, catalogue, text_vectors
):
    url = reverse("evaluation_report")
    assert admin_client.get(url).status_code == 404  # none yet, and the page says how
    assert url in admin_client.get(reverse("admin:index")).content.decode()
    call_command("evaluate", "--judged", str(judged_file(tmp_path, catalogue)), "--resamples", "20")
    page = admin_client.get(url)
    assert page.status_code == 200
    assert "Search evaluation" in page.content.decode()
    run = next((settings.MEEPO_DATA_DIR / "evaluation").iterdir()).name
    assert admin_client.get(url, {"run": run}).status_code == 200
    assert admin_client.get(url, {"run": "../../db.sqlite3"}).status_code == 404
    anonymous = client.get(url)
    assert anonymous.status_code == 302
    assert "/admin/login/" in anonymous["Location"]


def test_attributes_are_scored_against_the_stores_own_words(tmp_path, catalogue, text_vectors):
    from catalog.models import ProductAttributes

    titled = [
        ("Navy oxford shirt", "navy"),  # agrees
        ("Red enamel mug", "red"),  # agrees
        ("Green wool rug", "red"),  # disagrees
        ("Blue and red scarf", "red"),  # states two colours: left out
        ("Black lamp", ""),  # stated, not labelled
        ("Plain box", "navy"),  # states no colour (plain is a pattern): left out of colour
    ]
    for title, colour in titled:
        product = ProductFactory(title=title)
        ProductAttributes.objects.create(product=product, colour=colour, model_name="m", key="k")
    queries = load_judged(judged_file(tmp_path, catalogue))[:1]
    report = run_evaluation(queries=queries, resamples=50, write=False).report
    colour = report["attributes"]["colour"]
    assert (colour["stated"], colour["labelled"], colour["agree"]) == (4, 3, 2)
    assert colour["agreement"]["mean"] == pytest.approx(0.5)
    assert colour["coverage"]["mean"] == pytest.approx(0.75)
    assert report["attributes"]["pattern"]["stated"] == 1  # "Plain box"
    text = render_text(report)
    assert "Zero-shot attributes vs the stores' own words" in text
