"""The concept explorer in a real headless Chromium: a page built from a concepts run on the synthetic world, opened
from disk, driven through its controls, and watched for network requests.

Needs Chromium and its driver (``apt-get install -y chromium chromium-driver``) and the ``selenium`` package;
skipped, saying which is missing, without them.
"""

from __future__ import annotations

import json

import pytest
from headless_chromium import browser_missing, start_chromium

from xlray.concepts.run import run_concepts

MISSING = browser_missing()
pytestmark = [pytest.mark.integration, pytest.mark.skipif(MISSING is not None, reason=MISSING or "")]


@pytest.fixture(scope="module")
def driver():
    """One headless Chromium for the module; its performance log records every network request."""
    session = start_chromium(performance_log=True)
    yield session
    session.quit()


@pytest.fixture(scope="module")
def page(xc_en_activations, assets, tmp_path_factory):
    """A concepts run (xc-en, layers 0 and 2) and the explorer it wrote; (path, data)."""
    world = assets / "world" / "parallel"
    tmp = tmp_path_factory.mktemp("explorer")
    from xlray.concepts.config import ConceptsConfig

    cfg = ConceptsConfig(
        activations=str(xc_en_activations), source="xc", target="en",
        dictionary={"kind": "eflomal", "source": str(world / "xc-en.xc"), "target": str(world / "xc-en.en")},
        points={"pca_dim": 16}, clustering={"method": "fast-hdbscan", "min_cluster_size": 5},
        calign={"top_n": 1, "theta": 0.3}, model_label="bert", output_dir=str(tmp / "concepts"),
        explorer={"gold_words": str(assets / "world" / "gold" / "words.parquet"), "map_points": 1500},
        tracking={"enabled": False},
    )  # fmt: skip
    run_concepts(cfg)  # the run writes its explorer itself, as a user's run does
    out = tmp / "concepts"
    return out / "explorer.html", json.loads((out / "explorer.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def opened(driver, page):
    """The page loaded once (file://), every non-file request blocked; later tests drive the same page."""
    path, data = page
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["http://*", "https://*", "ws://*", "wss://*"]})
    driver.get(path.as_uri())
    wait_ready(driver)
    return driver, data


def wait_ready(driver, timeout: float = 20) -> None:
    """Until the page has unpacked its data and drawn itself (it sets body's data-ready)."""
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout).until(lambda d: d.execute_script("return document.body.dataset.ready") == "1")


def select_layer(driver, index: int) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    Select(driver.find_element(By.ID, "layer")).select_by_index(index)


def test_choosing_a_layer_changes_the_shown_metrics(opened):
    from selenium.webdriver.common.by import By

    driver, data = opened
    shown = {}
    for index in (0, 1):
        select_layer(driver, index)
        metric = driver.find_element(By.CSS_SELECTOR, '#metrics [data-metric="calign.xc_en"] b').text
        marked = driver.find_element(By.CSS_SELECTOR, "#curve circle.selected-layer").get_attribute("data-layer-index")
        shown[index] = (driver.find_element(By.ID, "metrics").text, metric, marked)
    for index, (_, metric, marked) in shown.items():
        assert metric == f"{data['layers'][index]['metrics']['calign.xc_en']:.3f}" and marked == str(index)
    assert shown[0][0] != shown[1][0]
    assert "COLAP" in shown[1][0] and "noise (joint)" in shown[1][0]


def test_searching_a_word_shows_its_concept_members_and_path(opened):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver, data = opened
    select_layer(driver, 1)
    view = data["layers"][1]["views"]["source"]
    vocab = data["vocab"]["xc"]
    row = max(range(len(view["id"])), key=lambda r: view["size"][r])  # the largest xc concept at layer 2
    w = view["words"][row][0][0]
    home = view["home"]["xc"][w]
    box = driver.find_element(By.ID, "search")
    box.clear()
    box.send_keys(vocab[w], Keys.ENTER)
    result = driver.find_element(By.ID, "word-result").text
    assert f"concept #{home}" in result and vocab[w] in result
    members = driver.find_element(By.ID, "word-members").text
    r = view["id"].index(home)
    assert all(vocab[m] in members for m in view["words"][r][0])
    path = driver.find_elements(By.CSS_SELECTOR, "#word-path tr.pick")
    expected = [f"#{layer['views']['source']['home']['xc'][w]}" for layer in data["layers"]]
    assert [p.find_elements(By.TAG_NAME, "td")[1].text for p in path] == [e.replace("#-1", "noise") for e in expected]
    assert driver.find_element(By.CSS_SELECTOR, "#concept-detail h2").text.startswith(f"Concept #{home}")


def test_an_aligned_concept_shows_the_translations_that_matched(opened):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    driver, data = opened
    select_layer(driver, 1)
    driver.find_element(By.CSS_SELECTOR, 'input[name=view][value="source"]').click()
    Select(driver.find_element(By.ID, "filter")).select_by_value("aligned")
    first = driver.find_element(By.CSS_SELECTOR, "#concept-list tr.pick")
    label = int(first.get_attribute("data-concept"))
    first.click()
    view = data["layers"][1]["views"]["source"]
    matches = view["matches"][view["id"].index(label)]
    target, _, _, aligned, pairs = next(m for m in matches if m[3])
    shown = driver.find_element(By.CSS_SELECTOR, f'#concept-detail tr.aligned[data-target="{target}"]')
    text = shown.find_element(By.CSS_SELECTOR, "td.pairs").text
    src, tgt = data["vocab"]["xc"], data["vocab"]["en"]
    for s, t in zip(pairs[::2], pairs[1::2], strict=True):
        assert f"{src[s]} → {tgt[t]}" in text
    marked = {m.text for m in shown.find_elements(By.CSS_SELECTOR, "td.pairs mark")}
    assert marked == {src[s] for s in pairs[::2]} | {tgt[t] for t in pairs[1::2]}
    assert "✓" in shown.text


def test_the_map_draws_its_points_and_names_them_on_hover(opened):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    driver, data = opened
    select_layer(driver, 0)
    canvas = driver.find_element(By.ID, "map")
    m = data["layers"][0]["map"]
    assert 0 < m["shown"] <= 1500 and int(canvas.get_attribute("data-points")) == len(m["x"]) == m["shown"]
    painted = driver.execute_script(
        "const c = arguments[0]; const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        "let n = 0; for (let i = 3; i < px.length; i += 4) if (px[i] > 0) n++; return n;",
        canvas,
    )
    assert painted > 2 * len(m["x"])
    assert "PCA" in driver.find_element(By.ID, "map-note").text
    x, y = 10 + m["x"][0] / 1000 * 500, 410 - m["y"][0] / 1000 * 400
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", canvas)  # a pointer stays in view
    ActionChains(driver).move_to_element_with_offset(canvas, int(x - 260), int(y - 210)).perform()
    tip = driver.find_element(By.ID, "map-tip")
    assert tip.is_displayed() and tip.text.split(" ")[0] in set(data["vocab"]["xc"]) | set(data["vocab"]["en"])


def test_the_page_requests_nothing_from_the_network(opened, page):
    driver, _ = opened
    driver.find_element("id", "next").click()  # interact once more: nothing is fetched later either
    requests = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            requests.append(message["params"]["request"]["url"])
    assert page[0].as_uri() in requests
    assert all(url.startswith("file://") for url in requests), requests
    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors
