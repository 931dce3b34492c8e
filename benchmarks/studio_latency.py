"""The studio's slider latency, measured in a real headless Chromium, and its screenshots.

    python benchmarks/studio_latency.py mnist=/tmp/studio_exports/mnist style32=/tmp/studio_exports/style32 \
        [--moves 25] [--warmup 3] [--screenshot-dir docs] [--upload digit.png] [--draw]

For each LABEL=EXPORT: starts `python -m serving.http --model EXPORT --studio` (default flags:
one ONNX Runtime thread per request) on a free loopback port, opens the page in headless Chromium
(Debian's chromium + chromium-driver via selenium, tests/studio_browser.py), then moves the first
direction slider one step at a time with the keyboard, `--warmup` + `--moves` times, waiting for
each edit to be shown. The page itself times each move (performance.now() from sending the edit
request to the decoded image: request, ONNX Runtime, PNG encoding, JSON, base64 and PNG decoding);
the figures are those timings (ms). With --screenshot-dir, saves DIR/studio_LABEL.png of the whole
page after the moves. Prints one line per export, then JSON on the last line.
"""

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

import studio_browser  # noqa: E402
from serving import layout  # noqa: E402
from serving.command_line import CommandParser  # noqa: E402


def parse_args(argv=None):
    parser = CommandParser(prog="python benchmarks/studio_latency.py", description=__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("exports", nargs="+", metavar="LABEL=EXPORT", help="a label and an export directory of python -m export whose run has directions (python -m alae_tf.edit "
                             "directions, then export): the first one's slider is moved")
    parser.add_argument("--moves", type=int, default=25, help="timed slider moves per export (default: 25)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed moves first (default: 3)")
    parser.add_argument("--screenshot-dir", type=Path, help="save DIR/studio_LABEL.png of the page after the moves")
    parser.add_argument("--upload", type=Path, help="upload this PNG, JPEG or WebP as the first image before the moves")
    parser.add_argument("--draw", action="store_true", help="draw a 7 on the drawing canvas (grayscale models; for the screenshot)")
    parser.add_argument("--server-flag", action="append", default=[], help="an extra flag for python -m serving.http (repeatable)")
    args = parser.parse_args(argv)
    for item in args.exports:
        if "=" not in item:
            parser.error(f"{item}: expected LABEL=EXPORT")
    if args.moves < 1 or args.warmup < 0:
        parser.error("--moves must be at least 1 and --warmup 0 or more")
    # the server runs in the repository: paths as given here are resolved first
    args.exports = [f"{label}={Path(path).resolve()}" for label, path in (item.split("=", 1) for item in args.exports)]
    for item in args.exports:
        label, path = item.split("=", 1)
        try:
            metadata = layout.read_metadata(layout.find_onnx_version_dir(Path(path)))
        except (FileNotFoundError, ValueError) as exc:
            parser.error(f"{label}: {exc}")
        if not metadata.get("directions"):
            parser.error(f"{label}: the export carries no directions; fit some (python -m alae_tf.edit directions) and "
                         "export again")
    if args.upload and not args.upload.is_file():
        parser.error(f"--upload {args.upload}: no such file")
    args.upload = args.upload and args.upload.resolve()
    return args


def machine() -> dict:
    info = {"cpus": os.cpu_count(), "platform": platform.platform()}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return info
    lines = {key.strip(): value for key, _, value in (line.partition(":") for line in text.splitlines())}
    flags = set(lines.get("flags", "").split())
    info["cpu"] = lines.get("model name", "").strip()
    info["vector_extensions"] = sorted(flag for flag in flags if flag in {"avx2", "fma", "avx512f", "avx512_bf16", "amx_tile"})
    return info


class Server:
    """python -m serving.http --studio on a free loopback port."""

    def __init__(self, export_dir, flags):
        command = [sys.executable, "-m", "serving.http", "--model", str(export_dir), "--port", "0", "--studio", *flags]
        self.process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.process.stdout.readline()
        if not line.startswith("serving "):
            self.process.kill()
            raise SystemExit(f"the server did not start: {line}{self.process.stderr.read()[-2000:]}")
        self.url = line.split(" at ")[1].strip().split("/v1/")[0]

    def close(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def move_slider(driver, slider, key, expected_edits):
    slider.send_keys(key)
    studio_browser.wait_for(driver, lambda d: studio_browser.settled(d) and studio_browser.shown_edits(d) == expected_edits(),
                            "the edit to be shown")


def draw_seven(driver):
    """A 7 in three pointer strokes on the page's canvas (not used as the image)."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    canvas = driver.find_element(By.ID, "canvas")
    size = canvas.size["width"]
    points = [(0.25, 0.22), (0.75, 0.22), (0.45, 0.8)]  # fractions of the canvas, from its top left
    actions = ActionChains(driver)
    x, y = points[0]
    actions.move_to_element_with_offset(canvas, int((x - 0.5) * size), int((y - 0.5) * size)).click_and_hold()
    for x, y in points[1:]:
        actions.move_to_element_with_offset(canvas, int((x - 0.5) * size), int((y - 0.5) * size))
    actions.release().perform()


def measure(label, export_dir, args) -> dict:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    server = Server(export_dir, args.server_flag)
    try:
        with studio_browser.chromium(width=1400, height=1000) as driver:
            driver.get(server.url + "/studio")
            studio_browser.wait_until_settled(driver, "the page's first sample")
            info = driver.execute_script("return fetch('/studio/api/info').then(r => r.json())")
            if args.draw and info["can_draw"]:
                draw_seven(driver)
            if args.upload:
                driver.find_element(By.ID, "upload").send_keys(str(args.upload.resolve()))
                studio_browser.wait_for(driver, lambda d: (studio_browser.settled(d) or {}).get("subject", "").startswith(
                    f"Upload {args.upload.name}"), "the upload")
            sliders = driver.find_elements(By.CSS_SELECTOR, "#sliders input[type=range]")
            if not sliders:
                raise SystemExit(f"{label}: the page shows no direction slider, though the export carries directions")
            slider = sliders[0]

            def expected():
                strength = float(slider.get_attribute("data-strength"))
                return [{"direction": slider.get_attribute("data-direction"), "strength": strength}] if strength else []

            # Up four steps, down four, and again: every move changes the strength by one slider step.
            keys = [Keys.ARROW_RIGHT] * 4 + [Keys.ARROW_LEFT] * 4
            total = args.warmup + args.moves
            driver.execute_script("window.studio.timings.length = 0")
            for index in range(total):
                move_slider(driver, slider, keys[index % len(keys)], expected)
            timings = driver.execute_script("return window.studio.timings.slice()")[args.warmup:]
            if args.screenshot_dir:
                args.screenshot_dir.mkdir(parents=True, exist_ok=True)
                height = driver.execute_script("return document.documentElement.scrollHeight")
                driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",  # the whole page in one viewport
                                       {"width": 1400, "height": height, "deviceScaleFactor": 1, "mobile": False})
                time.sleep(0.3)
                path = args.screenshot_dir / f"studio_{label}.png"
                driver.save_screenshot(str(path))
                print(f"{label}: screenshot {path}", file=sys.stderr)
            if studio_browser.error_text(driver):
                raise SystemExit(f"{label}: the page shows an error: {studio_browser.error_text(driver)}")
    finally:
        server.close()
    ordered = sorted(timings)
    return {
        "model_name": info["model_name"], "image_shape": info["image_shape"], "latent_dim": info["latent_dim"],
        "num_styles": info["num_styles"], "direction": info["directions"][0]["name"],
        "moves": len(timings), "median_ms": round(statistics.median(timings), 2),
        "p90_ms": round(ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))], 2),
        "min_ms": round(ordered[0], 2), "max_ms": round(ordered[-1], 2),
    }


def main(argv=None) -> int:
    args = parse_args(argv)
    missing = studio_browser.missing_browser()
    if missing:
        print(f"error: no headless browser: {missing}", file=sys.stderr)
        return 2
    results = {}
    for item in args.exports:
        label, export_dir = item.split("=", 1)
        results[label] = measure(label, export_dir, args)
        r = results[label]
        print(f"{label}: {r['model_name']} {'x'.join(map(str, r['image_shape']))}, one slider move (request to shown image) "
              f"median {r['median_ms']} ms, p90 {r['p90_ms']} ms, min {r['min_ms']} ms over {r['moves']} moves")
    summary = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), "machine": machine(),
               "server_flags": args.server_flag or ["(defaults: --threads 1)"], "results": results}
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
