"""The dashboards (drift, drift overview, EDA, model progress) render in a real JupyterLab driven by
headless Chromium: a test opens a notebook, runs it, changes a widget and checks the plot redrew;
the standalone HTML reports open from file:// without any kernel. One JupyterLab server serves the
whole session. Screenshots go to <tmp>/screenshots (and, when RWB_SCREENSHOTS is set, to that
folder)."""
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import nbformat
import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VENV_BIN = Path(sys.executable).parent

DRIFT_CELLS = [
    "from retail_workbench.data.synth import make_world\n"
    "from retail_workbench.monitor.dashboard import DriftDashboard\n"
    "world = make_world(n_users=30, n_items=30, n_days=63, seed=0, n_stores=1,\n"
    "                   drift=dict(date='2023-02-20', kind='price'))\n"
    "sales = world.sales.rename(columns={'date': 'ts'})\n"
    "dash = DriftDashboard(sales, window='7D', columns=['units', 'price', 'promo'])\n"
    "dash.widget",
    "from retail_workbench.monitor.dashboard import DriftOverview\n"
    "DriftOverview(dash)",
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _write_notebook(path: Path, cells: list[str]):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = {"name": "retail-workbench", "display_name": "retail-workbench",
                                 "language": "python"}
    nbformat.write(nb, path)


@pytest.fixture(scope="session")
def lab(tmp_path_factory):
    "JupyterLab on a free loopback port with a token, in a temp folder of small notebooks."
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is absent (apt-get install -y chromium)")
    pytest.importorskip("playwright.sync_api")
    root = tmp_path_factory.mktemp("lab")
    home = root / "home"
    for name in ("config", "data", "runtime", "settings", "workspaces", "rwb"):
        (home / name).mkdir(parents=True)
    port, token = _free_port(), uuid.uuid4().hex
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(home / "config"),
           "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
           "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
           "RWB_HOME": str(home / "rwb"), "RWB_PROGRESS": "0"}
    # no news / update pop-ups over the notebook
    (home / "settings" / "@jupyterlab" / "apputils-extension").mkdir(parents=True)
    (home / "settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
     ).write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    notebooks = root / "notebooks"
    notebooks.mkdir()
    log = open(root / "lab.log", "w")
    proc = subprocess.Popen(
        [str(VENV_BIN / "jupyter"), "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={notebooks}",
         "--ServerApp.port_retries=0", "--allow-root", "--LabApp.news_url=None",
         "--LabApp.extension_manager=readonly"],
        env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120   # a loaded machine can take a while to start it
    while True:
        try:
            urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
            break
        except OSError:
            if time.time() > deadline or proc.poll() is not None:
                proc.terminate()
                pytest.fail(f"jupyter lab did not start: {(root / 'lab.log').read_text()[-2000:]}")
            time.sleep(0.3)
    yield {"url": url, "token": token, "notebooks": notebooks, "root": root}
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture(scope="session")
def browser_context(lab):
    from playwright.sync_api import sync_playwright
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(lab["root"] / "chromium-profile"), executable_path=CHROMIUM, headless=True,
            args=CHROMIUM_ARGS, viewport={"width": 1400, "height": 1000})
        yield context
        context.close()


def _screenshot(page, lab, name):
    folder = lab["root"] / "screenshots"
    folder.mkdir(exist_ok=True)
    page.screenshot(path=str(folder / name), full_page=True)
    if os.environ.get("RWB_SCREENSHOTS"):
        Path(os.environ["RWB_SCREENSHOTS"]).mkdir(parents=True, exist_ok=True)
        shutil.copy(folder / name, Path(os.environ["RWB_SCREENSHOTS"]) / name)


def _dismiss_kernel_picker(page):
    button = page.locator(".jp-Dialog button:has-text('Select')")
    if button.count():
        button.first.click()
    # the news / update notification, should the settings not have kept it away
    news = page.locator(".jp-Notification-Toast button:has-text('No')")
    if news.count():
        news.first.click()


def _open_and_run(page, lab, notebook: str):
    page.goto(f"{lab['url']}/lab/tree/{notebook}?token={lab['token']}")
    page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=30_000)
    page.wait_for_function("() => document.body.innerText.includes('| Idle')", timeout=30_000)
    page.wait_for_timeout(3000)   # let the kernel session connect before running
    # "Run All Cells" can be lost while the kernel session is still connecting (the status bar
    # may already read Idle for another open notebook): retry until the first cell has started
    prompt = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-InputPrompt").first
    for _ in range(6):
        _dismiss_kernel_picker(page)
        page.click(".lm-MenuBar-itemLabel:text-is('Run')")
        page.click(".lm-Menu-itemLabel:text-is('Run All Cells')")
        try:
            page.wait_for_function("(e) => /\\[(\\*|\\d+)\\]/.test(e.textContent)",
                                   arg=prompt.element_handle(), timeout=10_000)
            return
        except Exception:
            continue
    _screenshot(page, lab, f"{notebook}_not_started.png")
    pytest.fail(f"{notebook}: Run All Cells did not start the kernel")


def _wait_for_plot(page, lab, name, timeout_s=60):
    "Wait until a plotly plot is in the outputs (dismissing a kernel picker that may pop up)."
    deadline = time.time() + timeout_s
    plots = page.locator(".jp-OutputArea .js-plotly-plot .main-svg")
    while not plots.count():
        if time.time() > deadline:
            _screenshot(page, lab, f"{name}_failed.png")
            error_cells = page.locator(".jp-OutputArea-output[data-mime-type*='error']")
            errors = error_cells.all_inner_texts()
            pytest.fail(f"no plot after {timeout_s}s; errors: {errors[:1]}")
        _dismiss_kernel_picker(page)
        page.wait_for_timeout(500)


def test_drift_dashboard_renders_and_updates(lab, browser_context):
    _write_notebook(lab["notebooks"] / "drift_dashboard.ipynb", DRIFT_CELLS)
    page = browser_context.new_page()
    _open_and_run(page, lab, "drift_dashboard.ipynb")
    _wait_for_plot(page, lab, "drift_dashboard")
    try:
        page.wait_for_function(
            "() => [...document.querySelectorAll('.js-plotly-plot .gtitle')]"
            ".some(e => e.textContent.startsWith('price: reference'))", timeout=40_000)
    except Exception:
        _screenshot(page, lab, "drift_dashboard_failed.png")
        titles = page.locator(".js-plotly-plot .gtitle").all_inner_texts()
        pytest.fail(f"no 'price: reference' chart; titles: {titles}")
    _screenshot(page, lab, "drift_dashboard_before.png")
    page.select_option(".jp-OutputArea .widget-dropdown select", "units")
    page.wait_for_function(
        "() => [...document.querySelectorAll('.js-plotly-plot .gtitle')]"
        ".some(e => e.textContent.startsWith('units: reference'))", timeout=40_000)
    page.wait_for_function(
        "() => [...document.querySelectorAll('.js-plotly-plot .gtitle')]"
        ".some(e => e.textContent === 'drift of units over time')", timeout=40_000)
    # the timeline shows one marker per window
    assert page.locator(".jp-OutputArea .js-plotly-plot .scatterlayer .point").count() >= 5
    _screenshot(page, lab, "drift_dashboard_after.png")
    # the overview below it: one row (and one sparkline) per column, most drifted first
    overview = page.locator(".jp-OutputArea .rwb-drift-overview")
    overview.wait_for(timeout=40_000)
    names = overview.locator(".rwb-open")
    page.wait_for_function("() => document.querySelectorAll('.rwb-drift-overview .rwb-open')"
                           ".length === 3", timeout=40_000)
    assert overview.locator("svg.rwb-spark").count() == 3
    overview.scroll_into_view_if_needed()
    _screenshot(page, lab, "drift_overview_before.png")
    first_order = names.all_inner_texts()
    overview.locator(".rwb-sort-column").click()          # sort by name
    page.wait_for_function(
        "(o) => [...document.querySelectorAll('.rwb-drift-overview .rwb-open')]"
        ".map(b => b.textContent.trim()).join() === o", arg=",".join(sorted(first_order)),
        timeout=40_000)
    overview.locator(".rwb-open", has_text="promo").click()   # opens today's view of promo
    page.wait_for_function(
        "() => [...document.querySelectorAll('.rwb-drift-overview .js-plotly-plot .gtitle')]"
        ".some(e => e.textContent.startsWith('promo: reference'))", timeout=40_000)
    _screenshot(page, lab, "drift_overview_after.png")
    page.close()


def _eda_cells():
    eda = pytest.importorskip("retail_workbench.data.eda")
    if not hasattr(eda, "eda_dashboard"):
        pytest.skip("retail_workbench.data.eda has no eda_dashboard yet")
    return [
        "from retail_workbench.data.synth import make_world\n"
        "from retail_workbench.data.eda import eda_dashboard\n"
        "world = make_world(n_users=30, n_items=30, n_days=30, seed=0, n_stores=1)\n"
        "eda_dashboard(world.tables)",
    ]


def _has_title(page, text):
    return page.evaluate(
        "(t) => [...document.querySelectorAll('.js-plotly-plot .gtitle')]"
        ".some(e => e.textContent === t)", text)


def test_eda_dashboard_renders_and_updates(lab, browser_context):
    _write_notebook(lab["notebooks"] / "eda_dashboard.ipynb", _eda_cells())
    page = browser_context.new_page()
    _open_and_run(page, lab, "eda_dashboard.ipynb")
    _wait_for_plot(page, lab, "eda_dashboard")
    page.wait_for_timeout(2000)
    _screenshot(page, lab, "eda_dashboard_before.png")
    picker = page.locator(".jp-OutputArea .rwb-eda-column select").first
    first = picker.evaluate("(s) => s.options[s.selectedIndex].text")
    assert _has_title(page, f"interactions.{first}"), "the EDA charts rendered empty"
    other = next(o for o in picker.locator("option").all_inner_texts() if o != first)
    picker.select_option(other)
    try:
        page.wait_for_function(
            "(t) => [...document.querySelectorAll('.js-plotly-plot .gtitle')]"
            ".some(e => e.textContent === t)", arg=f"interactions.{other}", timeout=40_000)
    finally:
        _screenshot(page, lab, "eda_dashboard_after.png")
    bars = page.locator(".jp-OutputArea .rwb-eda-distribution .bars .point").count()
    assert bars > 0, "the distribution chart drew no bars after the change"
    # the profile: one row per column, the warning rows highlighted
    assert page.locator(".rwb-eda-profile tr.rwb-warn").count() > 0
    assert page.locator(".rwb-eda-profile svg.rwb-bars").count() >= 5
    # zoom the coverage chart by dragging across it: the date pickers follow (linked charts)
    start_input = page.locator(".jp-OutputArea .rwb-eda-start input").first
    end_input = page.locator(".jp-OutputArea .rwb-eda-end input").first
    full_range = (start_input.input_value(), end_input.input_value())
    drag = page.locator(".jp-OutputArea .rwb-eda-coverage .nsewdrag").first
    drag.scroll_into_view_if_needed()
    box = drag.bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * 0.35, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.6, y, steps=8)
    page.mouse.up()
    page.wait_for_function(
        "(r) => { const s = document.querySelector('.rwb-eda-start input');"
        " const e = document.querySelector('.rwb-eda-end input');"
        " return s.value !== r[0] || e.value !== r[1]; }", arg=list(full_range), timeout=40_000)
    _screenshot(page, lab, "eda_dashboard_zoomed.png")
    # another table: its full date range in the pickers, and the chart follows them
    page.locator(".jp-OutputArea .rwb-eda-table select").first.select_option("sales")
    page.wait_for_function(
        "() => [...document.querySelectorAll('.js-plotly-plot .gtitle')]"
        ".some(e => e.textContent.startsWith('sales.'))", timeout=40_000)
    shown = ("() => { const g = [...document.querySelectorAll('.js-plotly-plot')].find(d => [...d.querySelectorAll('.gtitle')].some(t => t.textContent.startsWith('rows per period')));"
             " const r = g && ((g._fullLayout && g._fullLayout.xaxis.range) || (g.layout && g.layout.xaxis && g.layout.xaxis.range));"
             " return [document.querySelector('.rwb-eda-start input').value,"
             " document.querySelector('.rwb-eda-end input').value, r ? r.map(String) : null,"
             " document.querySelectorAll('.rwb-eda-coverage .js-plotly-plot').length,"
             " document.querySelectorAll('.rwb-eda-coverage').length]; }")
    try:
        page.wait_for_function(
            "() => { const s = document.querySelector('.rwb-eda-start input').value;"
            " const e = document.querySelector('.rwb-eda-end input').value;"
            " const g = [...document.querySelectorAll('.js-plotly-plot')].find(d => [...d.querySelectorAll('.gtitle')].some(t => t.textContent.startsWith('rows per period')));"
            " const r = g && ((g._fullLayout && g._fullLayout.xaxis.range) || (g.layout && g.layout.xaxis && g.layout.xaxis.range));"
            " return r && String(r[0]).slice(0, 10) === s && String(r[1]).slice(0, 10) === e; }",
            timeout=40_000)
    except Exception:
        _screenshot(page, lab, "eda_dashboard_table_changed_failed.png")
        pytest.fail(f"after the table change the pickers and the chart range differ: {page.evaluate(shown)}")
    assert (start_input.input_value(), end_input.input_value()) == full_range
    _screenshot(page, lab, "eda_dashboard_table_changed.png")
    page.close()


PROGRESS_CELLS = [
    "import os, tempfile\n"
    "os.environ['RWB_HOME'] = tempfile.mkdtemp()\n"
    "from retail_workbench.ops.progress import model_progress, sample_registry\n"
    "sample_registry('example_model', n_versions=5)\n"
    "sample_registry('second_model', n_versions=3, metric='wape', seed=1)\n"
    "model_progress()",
]


def _wait_for_title(page, text, timeout=40_000):
    page.wait_for_function(
        "(t) => [...document.querySelectorAll('.js-plotly-plot .gtitle')]"
        ".some(e => e.textContent === t)", arg=text, timeout=timeout)


def test_model_progress_dashboard_renders_and_updates(lab, browser_context):
    _write_notebook(lab["notebooks"] / "model_progress.ipynb", PROGRESS_CELLS)
    page = browser_context.new_page()
    _open_and_run(page, lab, "model_progress.ipynb")
    _wait_for_plot(page, lab, "model_progress", timeout_s=90)
    _wait_for_title(page, "example_model: ndcg_at_10 over versions")
    points = page.locator(".rwb-progress-chart .scatterlayer .point")
    assert points.count() == 5, "one marker per registered version"
    _screenshot(page, lab, "model_progress_before.png")
    page.locator(".rwb-progress-metric select").select_option("coverage")
    _wait_for_title(page, "example_model: coverage over versions")
    page.locator(".rwb-progress-family select").select_option("second_model")
    _wait_for_title(page, "second_model: wape over versions")
    page.wait_for_function(
        "() => document.querySelectorAll('.rwb-progress-chart .scatterlayer .point')"
        ".length === 3", timeout=40_000)
    page.locator(".rwb-progress-a select").select_option(label="v1")
    page.wait_for_function(
        "() => document.querySelector('.rwb-progress-comparison').textContent"
        ".includes('metrics: v1 and v3')", timeout=40_000)
    _screenshot(page, lab, "model_progress_after.png")
    page.close()


def test_html_reports_render_without_a_kernel(lab, browser_context, tmp_path, monkeypatch):
    "`rwb drift --html` and `rwb registry report --html` write pages that draw from file://."
    from retail_workbench.cli.app import main
    from retail_workbench.data.synth import make_world
    from retail_workbench.ops.progress import sample_registry
    monkeypatch.setenv("RWB_HOME", str(tmp_path / "home"))
    sales = make_world(n_users=30, n_items=30, n_days=63, seed=0, n_stores=1,
                       drift=dict(date="2023-02-20", kind="price")).sales
    sales = sales.rename(columns={"date": "ts"})
    sales[sales.ts < "2023-02-06"].to_parquet(tmp_path / "reference.parquet")
    sales[sales.ts >= "2023-02-06"].drop(columns=["promo"]).to_parquet(tmp_path / "current.parquet")
    drift_html, registry_html = tmp_path / "drift.html", tmp_path / "registry.html"
    assert main(["drift", "--reference", str(tmp_path / "reference.parquet"),
                 "--current", str(tmp_path / "current.parquet"), "--columns", "units,price",
                 "--html", str(drift_html)]) == 0
    sample_registry("example_model", n_versions=4)
    assert main(["registry", "report", "--html", str(registry_html)]) == 0
    page = browser_context.new_page()
    page.route("http*://**", lambda route: route.abort())   # nothing may come from a network
    page.goto(drift_html.as_uri())
    page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot .main-svg')"
                           ".length >= 4", timeout=30_000)   # two charts for each column
    assert "promo dropped" in page.inner_text(".rwb-schema")
    assert _has_title(page, "price: reference vs window 2023-02-27")
    assert page.locator("table.rwb-sortable svg.rwb-spark").count() == 2
    first = page.locator("table.rwb-sortable tbody tr td:first-child").all_inner_texts()
    page.click("table.rwb-sortable th:text-is('column')")    # sorting works without a kernel
    page.wait_for_function(
        "(o) => [...document.querySelectorAll('table.rwb-sortable tbody tr td:first-child')]"
        ".map(e => e.textContent).join() === o", arg=",".join(sorted(first)), timeout=10_000)
    _screenshot(page, lab, "drift_report_html.png")
    page.goto(registry_html.as_uri())
    page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot .main-svg')"
                           ".length >= 1", timeout=30_000)
    assert _has_title(page, "example_model: ndcg_at_10 over versions")
    assert page.locator(".js-plotly-plot .scatterlayer .point").count() == 4
    assert "parameters that differ" in page.inner_text("body")
    _screenshot(page, lab, "registry_report_html.png")
    page.close()
