"""A real browser on notebook 03: JupyterLab from the project's venv, driven by headless Chromium (selenium).

    .venv-browser/bin/python tests/browser/lab_in_chromium.py [--out reports/browser]    # what .ci/browser runs

Runs in its own venv (.venv-browser: selenium, pillow), never imported by pytest. Steps, each with a time limit:
a tiny run of notebook 01's network (``fercore train``, 60 steps: the browser test checks drawing, not accuracy);
the kernel "fercore" registered for .venv in a private Jupyter data folder; JupyterLab started the way ``make lab``
starts it (``fercore.lab.command``: working copies, --allow-root as root) on a free port with a token; notebook 03
(parameters injected by papermill --prepare-only) opened in Chromium, checked to run in the kernel "fercore", run
top to bottom with no error; the filter browser's method dropdown set to each method in turn, and after each the
figure is checked non-blank (its PNG's size, and the pixel spread of its screenshot) and different from the last;
then notebook 03 executed by papermill, its HTML copy (``fercore.reproduce.to_html``) opened from disk with every
network request blocked, and checked to show its figures. Screenshots go to ``--out``; a failure exits 1 with the
step and the reason.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAUNCH = "import os, sys; from fercore import lab; argv = lab.command(*sys.argv[1:]); os.execv(argv[0], argv)"


class Failed(RuntimeError):
    pass


def step(name: str, timings: dict):
    class _Step:
        def __enter__(self):
            self.start = time.monotonic()
            print(f"[browser] {name} ...", flush=True)

        def __exit__(self, *exc):
            timings[name] = round(time.monotonic() - self.start, 1)
            if exc[0] is None:
                print(f"[browser] {name}: {timings[name]} s", flush=True)
    return _Step()


def run(argv, timeout: int, env=None) -> str:
    try:
        done = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        raise Failed(f"{argv[0]} {argv[1:3]} did not finish in {timeout} s") from None
    if done.returncode:
        raise Failed(f"{' '.join(map(str, argv[:4]))} exited {done.returncode}:\n{done.stdout[-2000:]}"
                     f"{done.stderr[-2000:]}")
    return done.stdout


def wait(what: str, timeout: float, probe, every: float = 0.5):
    """probe() until it returns something truthy; Failed naming ``what`` after ``timeout`` seconds."""
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        try:
            value = probe()
        except Failed:
            raise
        except Exception as error:  # the page is still loading: try again until the deadline
            value, last = None, error
        if value:
            return value
        time.sleep(every)
    raise Failed(f"timed out after {timeout:.0f} s waiting for {what}" + (f" (last error: {last})" if last else ""))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pixels(png: bytes) -> dict:
    """Size and spread of a screenshot: a blank figure is nearly all one colour."""
    from PIL import Image, ImageStat

    image = Image.open(io.BytesIO(png)).convert("L")
    stat = ImageStat.Stat(image)
    histogram = image.histogram()
    white = sum(histogram[245:]) / max(1, image.width * image.height)
    return {"width": image.width, "height": image.height, "std": round(stat.stddev[0], 1),
            "non_white": round(1 - white, 3)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "reports" / "browser"), help="screenshots and timings")
    parser.add_argument("--venv", default=str(ROOT / ".venv"), help="the project's venv")
    parser.add_argument("--data", default=str(ROOT / "data" / "synthfacs"), help="SynthFACS (written when missing)")
    parser.add_argument("--chromedriver", default=shutil.which("chromedriver") or "/usr/bin/chromedriver")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.png"):
        old.unlink()
    timings: dict[str, float] = {}
    scratch = Path(tempfile.mkdtemp(prefix="fercore-browser-"))
    start = time.monotonic()
    try:
        _run(args, out, scratch, timings)
        return 0
    except Failed as error:
        print(f"[browser] FAILED: {error}", file=sys.stderr, flush=True)
        return 1
    finally:
        timings["total"] = round(time.monotonic() - start, 1)
        (out / "timings.json").write_text(json.dumps(timings, indent=1))
        print(f"[browser] timings (s): {json.dumps(timings)}", flush=True)
        for process in _STARTED:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
        for d in _DRIVERS:
            try:
                d.quit()
            except Exception:  # already gone
                pass
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)


_STARTED: list[subprocess.Popen] = []
_DRIVERS: list = []


def _chrome(args, width: int, height: int, offline: bool = False):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 f"--window-size={width},{height}", "--hide-scrollbars"):
        options.add_argument(flag)
    if shutil.which("chromium"):
        options.binary_location = shutil.which("chromium")
    driver = webdriver.Chrome(service=Service(args.chromedriver), options=options)
    _DRIVERS.append(driver)
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(60)
    if offline:  # the HTML report must need nothing from the network
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["http://*", "https://*"]})
    return driver


NOTEBOOK_STATE = """
const panel = window.jupyterapp && window.jupyterapp.shell.currentWidget;
if (!panel || !panel.content || !panel.sessionContext) return null;
const ctx = panel.sessionContext, kernel = ctx.session && ctx.session.kernel;
const cells = panel.content.widgets.filter(c => c.model.type === 'code');
const errors = cells.flatMap(c => c.model.outputs.toJSON().filter(o => o.output_type === 'error')
                                      .map(o => o.ename + ': ' + o.evalue));
return {kernel: kernel ? kernel.name : null, status: kernel ? kernel.status : null,
        cells: cells.length, executed: cells.filter(c => c.model.executionCount).length,
        running: cells.filter(c => c.promptNode && c.promptNode.textContent.includes('*')).length, errors};
"""

BROWSER_CELL = """
const panel = window.jupyterapp.shell.currentWidget, nb = panel.content;
const index = nb.widgets.findIndex(c => c.model.sharedModel.getSource().includes('widgets.unit_browser('));
nb.activeCellIndex = index;
nb.scrollToItem(index, 'start');
return index;
"""


def _run(args, out: Path, scratch: Path, timings: dict) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    venv = Path(args.venv)
    python, fercore, papermill = venv / "bin" / "python", venv / "bin" / "fercore", venv / "bin" / "papermill"
    for tool in (python, fercore, papermill, Path(args.chromedriver)):
        if not tool.exists():
            raise Failed(f"{tool} is missing (make builds .venv; apt-get install chromium chromium-driver)")
    env = {**os.environ, "JUPYTER_DATA_DIR": str(scratch / "jupyter-data"),
           "JUPYTER_CONFIG_DIR": str(scratch / "jupyter-config"), "JUPYTER_RUNTIME_DIR": str(scratch / "runtime"),
           "FERCORE_CACHE": str(scratch / "cache"), "MPLBACKEND": "module://matplotlib_inline.backend_inline"}
    env.pop("FERCORE_JUPYTER_SESSION", None)
    data, runs, folder = Path(args.data), scratch / "runs", scratch / "lab"

    with step("data", timings):
        if not (data / "Emotion").is_dir():
            run([fercore, "synth", "--out", data], timeout=600, env=env)
    with step("train a tiny run (60 steps)", timings):
        run([fercore, "train", "--dataset", "synthfacs", "--root", data, "--variant", "cnn_ad", "--fold", "0",
             "--iterations", "60", "--eval-every", "30", "--out", runs / "cnn_ad" / "fold0", "--no-progress"],
            timeout=300, env=env)
    with step("kernel fercore and notebook 03", timings):
        run([python, "-m", "ipykernel", "install", "--user", "--name", "fercore", "--display-name",
             "Python (fercore)"], timeout=60, env=env)
        folder.mkdir()
        parameters = ["-p", "run_dir", runs, "-p", "data_root", data, "-p", "n_filters", "2"]
        run([papermill, ROOT / "notebooks" / "03_neuron_visualization.ipynb", folder / "03.ipynb", "--prepare-only",
             *parameters], timeout=120, env=env)

    port, token = free_port(), secrets.token_hex(16)
    with step("JupyterLab starts", timings):
        log = open(scratch / "lab.log", "w")
        _STARTED.append(subprocess.Popen(
            [python, "-c", LAUNCH, folder, "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
             f"--IdentityProvider.token={token}", "--LabApp.expose_app_in_browser=True"],
            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT))
        import urllib.request

        def up():
            if _STARTED[-1].poll() is not None:
                log_tail = (scratch / "lab.log").read_text()[-3000:]
                raise Failed(f"JupyterLab exited {_STARTED[-1].returncode}: {log_tail}")
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={token}", timeout=5) as r:
                return r.status == 200
        try:
            wait("JupyterLab's server", 120, up)
        except Failed as error:
            raise Failed(f"{error}\n{(scratch / 'lab.log').read_text()[-3000:]}") from None

    driver = _chrome(args, 1400, 1000)
    with step("notebook 03 opens in the kernel fercore", timings):
        driver.get(f"http://127.0.0.1:{port}/lab/tree/03.ipynb?token={token}")
        state = wait("notebook 03 with an idle kernel", 180,
                     lambda: (s := driver.execute_script(NOTEBOOK_STATE)) and s["status"] == "idle" and s)
        if state["kernel"] != "fercore":
            raise Failed(f"notebook 03 runs in the kernel {state['kernel']!r}, not 'fercore'")
    with step("notebook 03 runs top to bottom", timings):
        driver.execute_script("window.jupyterapp.commands.execute('notebook:run-all-cells');")

        def finished():
            s = driver.execute_script(NOTEBOOK_STATE)
            if s["errors"]:
                raise Failed(f"a cell of notebook 03 raised: {s['errors'][0]}")
            return s["executed"] == s["cells"] and s["running"] == 0 and s["status"] == "idle" and s
        state = wait("every cell of notebook 03 to run", 420, finished, every=1)
        driver.save_screenshot(str(out / "03_lab_after_run.png"))

    with step("filter browser: every method", timings):
        driver.execute_script(BROWSER_CELL)
        cell = wait("the filter browser's widgets", 60, lambda: driver.execute_script(
            "const nb = window.jupyterapp.shell.currentWidget.content; return nb.activeCell.node;"))
        select = wait("the method dropdown", 60, lambda: next(
            (d.find_element(By.TAG_NAME, "select") for d in cell.find_elements(By.CSS_SELECTOR, ".widget-dropdown")
             if d.find_element(By.TAG_NAME, "label").text.strip() == "method"), None))
        image = wait("the browser's figure", 60,
                     lambda: cell.find_element(By.CSS_SELECTOR, ".widget-image").get_attribute("src") and
                     cell.find_element(By.CSS_SELECTOR, ".widget-image"))
        methods = [o.get_attribute("value") for o in Select(select).options]
        seen, heights = {}, {}
        for method in [m for m in methods if m != Select(select).first_selected_option.get_attribute("value")] + \
                [Select(select).first_selected_option.get_attribute("value")]:
            before = image.get_attribute("src")
            Select(select).select_by_value(method)

            def drawn(method=method, before=before):
                text = cell.find_element(By.CSS_SELECTOR, ".widget-html").text
                if f"method {method}," in text and "drawn in" not in text:
                    raise Failed(f"method {method!r}: the browser says {text!r}")
                return image.get_attribute("src") != before and f"method {method}," in text and text
            status = wait(f"the figure for {method!r}", 90, drawn)
            driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", image)
            natural = driver.execute_script("return [arguments[0].naturalWidth, arguments[0].naturalHeight];", image)
            shot = wait("the figure's screenshot", 30, lambda: image.screenshot_as_png)
            measured = {**pixels(shot), "natural": natural, "status": status}
            slug = method.replace(" ", "_")
            (out / f"03_browser_{slug}.png").write_bytes(shot)
            driver.save_screenshot(str(out / f"03_lab_{slug}.png"))
            digest = hashlib.sha256(shot).hexdigest()
            print(f"[browser] method {method!r}: {measured}", flush=True)
            # Blank, as issue 15 saw it: a strip with part of the title. Patches only is one row of k patches;
            # a projection adds a second row under it, so its figure is taller than the patches' alone.
            rows = 1 if method == "patches only" else 2
            if natural[1] < 90 * rows or measured["std"] < 30 or measured["non_white"] < 0.15:
                raise Failed(f"method {method!r}: the figure looks blank: {measured}")
            if rows == 2 and "patches only" in heights and natural[1] < 1.5 * heights["patches only"]:
                raise Failed(f"method {method!r}: no projection row under the patches: {measured}")
            heights[method] = natural[1]
            if digest in seen.values() and method not in seen:
                raise Failed(f"method {method!r}: the same figure as {[m for m, d in seen.items() if d == digest]}")
            seen[method] = digest
            timings[f"method {method}"] = measured
        if set(seen) != set(methods):
            raise Failed(f"methods checked {sorted(seen)}, offered {methods}")

    with step("HTML report of notebook 03, offline", timings):
        executed = scratch / "report" / "03_neuron_visualization.ipynb"
        executed.parent.mkdir()
        run([papermill, ROOT / "notebooks" / "03_neuron_visualization.ipynb", executed, *parameters,
             "--kernel", "fercore", "--execution-timeout", "600", "--no-progress-bar"], timeout=600, env=env)
        html = Path(run([python, "-c", "import sys; from pathlib import Path; from fercore.reproduce import to_html; "
                         "print(to_html(Path(sys.argv[1])))", executed], timeout=120, env=env).strip())
        shutil.copy2(html, out / "03_report.html")
        report = _chrome(args, 1200, 1000, offline=True)
        report.get(html.as_uri())
        wait("the report's images", 60, lambda: report.execute_script(
            "const imgs = [...document.images]; return imgs.length > 5 && imgs.every(i => i.complete && "
            "i.naturalWidth > 0);"))
        height = report.execute_script("return document.body.scrollHeight;")
        report.set_window_size(1200, min(int(height) + 100, 16000))
        report.save_screenshot(str(out / "03_report.png"))
        scripts = report.execute_script("return [...document.scripts].filter(s => s.src).map(s => s.src);")
        if scripts:
            raise Failed(f"the HTML report loads scripts from elsewhere: {scripts}")
    print(f"[browser] passed; screenshots in {out}: {sorted(p.name for p in out.glob('*.png'))}", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
