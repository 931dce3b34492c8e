"""The studio page in a real headless Chromium (Debian's chromium and chromium-driver, driven by
selenium), served by python -m serving.http --studio from the session's tiny MNIST export: upload
a PNG, move a direction slider with the keyboard, and the edited image the page shows is the one
ALAEOnnx gives for the same edit; a drawing on the canvas becomes the image; a corrupt upload
puts the server's error in the page, and a bad interpolation setting's error stays beside it (the
strip greyed out) until that setting works; behind a proxy that serves the server under a path
prefix, the page works too; a page open while the server moves to a newer version is told to
reload; a projection file, uploaded or on the server (--projections), opens as its images and
projected codes."""


import numpy as np
import pytest
import studio_browser
from exported_run import DIRECTIONS, assert_close_images, http_server, real_images
from PIL import Image
from prefix_proxy import prefix_proxy

from serving.onnx_model import ALAEOnnx

MISSING = studio_browser.missing_browser()
pytestmark = pytest.mark.skipif(MISSING is not None, reason=f"no headless browser: {MISSING}")

MOVES = 4  # arrow-key presses on the slider


def test_upload_edit_and_error_in_chromium(export_dir, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    model = ALAEOnnx(export_dir)
    digit = real_images(1)[0]
    Image.fromarray(digit[:, :, 0]).save(tmp_path / "digit.png")
    (tmp_path / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)

    with http_server(export_dir, "--studio") as url, studio_browser.chromium() as driver:
        driver.get(url + "/")
        studio_browser.wait_until_settled(driver, "the first sample and its edit")
        assert studio_browser.error_text(driver) == ""
        names = [e.get_attribute("data-direction") for e in driver.find_elements(By.CSS_SELECTOR, "#sliders input")]
        assert names == list(DIRECTIONS)
        assert driver.find_element(By.ID, "pair-heading").text == "3. Interpolate to a second image"  # the MLP: no mix

        driver.find_element(By.ID, "upload").send_keys(str(tmp_path / "digit.png"))
        studio_browser.wait_for(driver, lambda d: (studio_browser.settled(d) or {}).get("subject", "").startswith(
            "Upload digit.png"), "the upload's edit")
        assert driver.find_element(By.ID, "note").text == "Upload digit.png: PNG 28x28: used as it is"
        shown_input = studio_browser.image_pixels(driver, "input-image")
        np.testing.assert_array_equal(shown_input[:, :, :3], np.repeat(digit, 3, axis=2))
        before = studio_browser.image_pixels(driver, "edited-image")
        assert studio_browser.shown_edits(driver) == []
        assert_close_images(before[np.newaxis, :, :, :1], model.edit(digit[np.newaxis], DIRECTIONS[1], 0.0, as_uint8=True),
                            "the unedited reconstruction")

        slider = driver.find_element(By.ID, f"direction-{DIRECTIONS[1]}")
        for _ in range(MOVES):
            slider.send_keys(Keys.ARROW_RIGHT)
        assert slider.get_attribute("value") == str(MOVES)  # of -20..20
        strength = float(slider.get_attribute("data-strength"))
        assert strength == pytest.approx(MOVES / 20 * float(slider.get_attribute("data-max-strength")), abs=1e-4) != 0
        assert slider.get_attribute("aria-valuetext") == f"{strength:.2f}"  # a screen reader read the position
        wanted = [{"direction": DIRECTIONS[1], "strength": strength}]
        studio_browser.wait_for(driver, lambda d: studio_browser.settled(d) and studio_browser.shown_edits(d) == wanted,
                                f"the edit at strength {strength}")
        after = studio_browser.image_pixels(driver, "edited-image")
        assert (after[:, :, 3] == 255).all() and (after[:, :, :3] == after[:, :, :1]).all()  # opaque grey
        assert np.abs(after.astype(int) - before).max() > 10, "the edited image did not change"
        expected = model.edit(digit[np.newaxis], DIRECTIONS[1], strength, "all", as_uint8=True)
        assert_close_images(after[np.newaxis, :, :, :1], expected, "the edit shown in the page")
        assert driver.find_element(By.ID, "download").get_attribute("href").startswith("data:image/png;base64,")

        driver.find_element(By.ID, "use-drawing").click()  # an empty canvas was encoded as a black image, unsaid
        message = studio_browser.wait_for(driver, studio_browser.error_text, "the empty canvas's error")
        assert "the canvas is empty: draw a digit on it first (white on black)" in message, message
        draw_a_stroke(driver, driver.find_element(By.ID, "canvas"))
        driver.find_element(By.ID, "use-drawing").click()
        studio_browser.wait_for(driver, lambda d: (studio_browser.settled(d) or {}).get("subject", "").startswith("Drawing"),
                                "the drawing's edit")
        note = driver.find_element(By.ID, "note").text
        assert note == "Drawing: PNG 280x280: resized to 28x28, converted from RGBA to grayscale", note
        drawn = studio_browser.image_pixels(driver, "input-image")[:, :, 0]
        assert drawn[:, :8].max() == 0 and drawn[:, 10:18].max() >= 200  # a white vertical stroke on black

        # The same file again, after the drawing: a file input whose value still names the file
        # fires no change when a person picks that file again, so the page empties it once read.
        assert driver.execute_script("return document.getElementById('upload').value;") == ""
        driver.find_element(By.ID, "upload").send_keys(str(tmp_path / "digit.png"))
        studio_browser.wait_for(driver, lambda d: (studio_browser.settled(d) or {}).get("subject", "").startswith(
            "Upload digit.png"), "the same upload's edit again")
        note = driver.find_element(By.ID, "note").text
        assert note == "Upload digit.png: PNG 28x28: used as it is", note
        drawn = studio_browser.image_pixels(driver, "input-image")[:, :, 0]
        np.testing.assert_array_equal(drawn, digit[:, :, 0])

        driver.find_element(By.ID, "upload").send_keys(str(tmp_path / "corrupt.png"))
        message = studio_browser.wait_for(driver, studio_browser.error_text, "the error of the corrupt upload")
        assert message.startswith("upload of corrupt.png: the upload is not a readable PNG, JPEG, WebP or BMP image"), message
        assert message.endswith("(HTTP 400)")
        assert driver.find_element(By.ID, "error").is_displayed()
        assert driver.find_element(By.ID, "note").text == note  # the page keeps its images
        assert studio_browser.image_pixels(driver, "input-image")[:, :, 0].tolist() == drawn.tolist()

        # Each part's error stays while its cause stands, beside the others', and goes once that part
        # succeeds again; the output it still shows from before is greyed out as stale meanwhile.
        upload_error = message
        assert not is_stale(driver, "strip") and not is_stale(driver, "edited-image")
        steps = driver.find_element(By.ID, "steps")
        steps.clear()
        steps.send_keys("50", Keys.TAB)
        message = studio_browser.wait_for(driver, lambda d: "interpolate" in studio_browser.error_text(d)
                                          and studio_browser.error_text(d), "the error of 50 interpolation steps")
        assert message == upload_error + "\ninterpolate: steps 50 is outside [2, 32] (HTTP 400)", message
        assert is_stale(driver, "strip") and not is_stale(driver, "edited-image")
        slider.send_keys(Keys.ARROW_LEFT)
        studio_browser.wait_for(driver, lambda d: studio_browser.settled(d) and studio_browser.shown_edits(d) != wanted,
                                "the edit after one step back")
        assert studio_browser.error_text(driver) == message  # an edit that worked says nothing of the others
        steps.clear()
        steps.send_keys("4", Keys.TAB)
        studio_browser.wait_for(driver, lambda d: studio_browser.settled(d) and studio_browser.error_text(d) == upload_error,
                                "the interpolation's error to go once 4 steps are drawn")
        assert len(driver.find_elements(By.CSS_SELECTOR, "#strip img")) == 4 and not is_stale(driver, "strip")
        driver.find_element(By.ID, "sample").click()  # a new image: no error left
        studio_browser.wait_for(driver, lambda d: studio_browser.settled(d) and studio_browser.error_text(d) == "",
                                "the upload's error to go with a new sample")
        seed = driver.find_element(By.ID, "seed")  # Enter in the seed box draws that seed's sample
        seed.clear()
        seed.send_keys("42", Keys.ENTER)
        studio_browser.wait_for(driver, lambda d: (studio_browser.settled(d) or {}).get("subject", "").startswith(
            "Sample of seed 42"), "the sample of seed 42")


def is_stale(driver, element_id) -> bool:
    return driver.execute_script(f"return document.getElementById('{element_id}').classList.contains('stale');")


def is_outdated(driver, element_id) -> bool:
    return driver.execute_script(f"return document.getElementById('{element_id}').classList.contains('outdated');")


def test_a_lost_connection_names_the_parts_it_failed_and_its_lines_go_once_the_server_answers(export_dir):
    """An audit stopped the server under an open page: two identical "cannot reach the server" lines
    named no part, and the sample's line stayed after the server came back and edits worked again."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    with http_server(export_dir, "--studio") as url, studio_browser.chromium() as driver:
        driver.get(url + "/")
        studio_browser.wait_until_settled(driver, "the first sample and its edit")
        assert not is_outdated(driver, "download-link") and not is_outdated(driver, "timing")
        driver.set_network_conditions(offline=True, latency=0, throughput=0)
        driver.find_element(By.ID, f"direction-{DIRECTIONS[0]}").send_keys(Keys.ARROW_RIGHT)
        studio_browser.wait_for(driver, lambda d: "edit: cannot reach the server" in studio_browser.error_text(d),
                                "the edit's line")
        # The edit shown is the one before the move: "Download PNG" saved it and its timing stayed.
        assert is_stale(driver, "edited-image") and is_outdated(driver, "download-link") and is_outdated(driver, "timing")
        assert not driver.find_element(By.ID, "download").is_displayed()
        driver.find_element(By.ID, "dismiss-errors").click()  # hides the box; the edit is as out of date as before
        assert studio_browser.error_text(driver) == "" and is_stale(driver, "edited-image")
        assert is_outdated(driver, "download-link")
        driver.find_element(By.ID, "sample").click()
        lines = studio_browser.wait_for(driver, lambda d: len(studio_browser.error_text(d).split("\n")) == 2 and
                                        studio_browser.error_text(d).split("\n"), "the sample's line")
        assert lines[0].startswith("sample: cannot reach the server") and lines[1].startswith("edit: cannot reach"), lines
        driver.set_network_conditions(offline=False, latency=0, throughput=100 * 1024 * 1024)
        driver.find_element(By.ID, f"direction-{DIRECTIONS[0]}").send_keys(Keys.ARROW_RIGHT)
        studio_browser.wait_for(driver, lambda d: studio_browser.error_text(d) == "", "every line gone once it answered")
        studio_browser.wait_until_settled(driver, "the edit once the server answers")
        assert not is_stale(driver, "edited-image") and not is_outdated(driver, "download-link")
        assert driver.find_element(By.ID, "download").is_displayed() and not is_outdated(driver, "timing")


def test_the_page_works_behind_a_proxy_with_a_path_prefix(export_dir, tmp_path):
    """Reached as on a JupyterHub (jupyter-server-proxy strips /user/NAME/proxy/PORT), by the prefix
    without its trailing slash as people type it: the page moves to PREFIX/, styles itself, samples,
    and an upload's reconstruction is ALAEOnnx's; /studio/ stays under the prefix. With absolute URLs
    the page stayed at "Loading the model..." and /studio/ left the proxy; without the slash, its
    relative URLs left the prefix (the page stayed unstyled at "Loading the model..."), and its stylesheet
    and script were still fetched outside the prefix while it moved (two 404s in the console)."""
    from selenium.webdriver.common.by import By

    model = ALAEOnnx(export_dir)
    digit = real_images(1)[0]
    Image.fromarray(digit[:, :, 0]).save(tmp_path / "digit.png")

    outside = []
    with http_server(export_dir, "--studio") as url, prefix_proxy(url, "/user/me/proxy/8501", outside=outside) as base, \
            studio_browser.chromium() as driver:
        driver.get(base + "?seed=1")
        studio_browser.wait_for(driver, lambda d: d.current_url == base + "/?seed=1", "the page adding the prefix's slash")
        studio_browser.wait_until_settled(driver, "the first sample and its edit through the proxy", timeout=30)
        assert studio_browser.error_text(driver) == "" and outside == []
        assert driver.find_element(By.ID, "model-line").text.startswith(model.metadata["model_name"])
        assert driver.execute_script("return getComputedStyle(document.body).fontFamily").startswith("system-ui")  # studio.css

        driver.find_element(By.ID, "upload").send_keys(str(tmp_path / "digit.png"))
        studio_browser.wait_for(driver, lambda d: (studio_browser.settled(d) or {}).get("subject", "").startswith(
            "Upload digit.png"), "the upload's edit through the proxy")
        shown = studio_browser.image_pixels(driver, "edited-image")
        assert_close_images(shown[np.newaxis, :, :, :1], model.edit(digit[np.newaxis], DIRECTIONS[0], 0.0, as_uint8=True),
                            "the reconstruction shown through the proxy")

        # A file above --max-body-mb (16 by default): the server's 413 came before it read the body, and
        # the proxy, still sending it, passed on a reset connection: "cannot reach the server".
        (tmp_path / "big.png").write_bytes(bytes(17 * 2**20))
        driver.find_element(By.ID, "upload").send_keys(str(tmp_path / "big.png"))
        message = studio_browser.wait_for(driver, studio_browser.error_text, "the error of the upload above the limit")
        assert message == ("upload of big.png: the file is 17.0 MB, above the server's limit of 16.0 MB "
                           "(python -m serving.http --max-body-mb sets it)"), message
        assert driver.find_element(By.ID, "note").text.startswith("Upload digit.png")  # the page keeps its image

        driver.get(base + "/studio/")
        assert driver.current_url == base + "/studio"
        studio_browser.wait_until_settled(driver, "the page at PREFIX/studio", timeout=30)
        assert studio_browser.error_text(driver) == ""

        # A prefix ending in /studio was taken for the server's own /studio page: no slash added, the
        # page's files 404 and the page stuck unstyled at "Loading the model..." (an audit's case).
        with prefix_proxy(url, "/team/studio", outside=outside) as studio_base:
            driver.get(studio_base)
            studio_browser.wait_for(driver, lambda d: d.current_url == studio_base + "/", "the slash after /team/studio")
            studio_browser.wait_until_settled(driver, "the page under /team/studio", timeout=30)
            assert studio_browser.error_text(driver) == "" and outside == []


def test_a_slow_request_shows_that_the_page_works_and_errors_show_wherever_the_page_is_scrolled(export_dir, tmp_path):
    """Over a slow link nothing changed while an upload was under way (the file input already read
    "No file chosen"); "Download PNG" saved the page's HTML before an edit existed; an error of the
    second image was drawn above the page, out of sight from its panel, under the first image's name."""
    from selenium.webdriver.common.by import By

    (tmp_path / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    with http_server(export_dir, "--studio") as url, prefix_proxy(url, "/slow", post_delay=1.5) as base, \
            studio_browser.chromium() as driver:
        driver.get(base + "/")
        studio_browser.wait_for(driver, lambda d: d.find_element(By.ID, "busy").is_displayed(), "Working… during the first sample")
        assert not driver.find_element(By.ID, "download").is_displayed()  # no edited image yet
        assert driver.execute_script(  # nor its alt text drawn in the image's black box
            "return ['input-image', 'reconstruction-image', 'edited-image'].map(id => "
            "getComputedStyle(document.getElementById(id)).visibility)") == ["hidden"] * 3
        assert driver.execute_script("return document.body.classList.contains('busy')")
        studio_browser.wait_until_settled(driver, "the first sample and its edit", timeout=60)
        assert not driver.find_element(By.ID, "busy").is_displayed()
        assert driver.find_element(By.ID, "edited-image").is_displayed()
        assert driver.find_element(By.ID, "download").get_attribute("href").startswith("data:image/png;base64,")
        assert driver.find_element(By.ID, "download").is_displayed()

        driver.set_window_size(390, 844)  # a phone: the second image's panel is far below the top
        upload = driver.find_element(By.ID, "upload-b")
        driver.execute_script("arguments[0].scrollIntoView({block: 'end'})", upload)
        upload.send_keys(str(tmp_path / "corrupt.png"))
        message = studio_browser.wait_for(driver, studio_browser.error_text, "the second image's error")
        assert message.startswith("second image, upload of corrupt.png: the upload is not a readable"), message
        top, bottom = driver.execute_script("const r = document.getElementById('error').getBoundingClientRect(); "
                                            "return [r.top, r.bottom];")
        assert 0 <= top < bottom <= 844, (top, bottom)  # in the window, where the person is looking


def test_psi_moved_during_an_upload_keeps_the_upload(export_dir, tmp_path):
    """ψ drew the first image's sample again even while an upload was on its way: its newer ticket
    dropped the upload's answer, and the page showed a sample, saying nothing."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    Image.fromarray(real_images(1)[0][:, :, 0]).save(tmp_path / "digit.png")
    traffic = []
    with http_server(export_dir, "--studio") as url, \
            prefix_proxy(url, "/slow", post_delay=1.0, traffic=traffic) as base, studio_browser.chromium() as driver:
        driver.get(base + "/")
        studio_browser.wait_until_settled(driver, "the first sample and its edit")
        driver.find_element(By.ID, "upload").send_keys(str(tmp_path / "digit.png"))
        driver.find_element(By.ID, "psi").send_keys(Keys.ARROW_LEFT)  # while the upload waits at the proxy
        studio_browser.wait_for(driver, lambda d: (studio_browser.settled(d) or {}).get("subject", "").startswith(
            "Upload digit.png"), "the upload's edit")
        # Every request the page made has had its answer (a sample for the new ψ among them: the
        # second image's), so a sample wrongly shown as the first image would show by now (a fixed
        # 2.5 s wait before, which a loaded machine could outlast).
        studio_browser.wait_for(driver, lambda d: sum(t[0] == "sent" for t in traffic) == sum(t[0] == "answered" for t in traffic),
                                "the answers to every request")
        studio_browser.wait_until_settled(driver, "the page after the last answer")
        assert driver.find_element(By.ID, "note").text == "Upload digit.png: PNG 28x28: used as it is"


def test_a_reload_says_which_opened_image_it_did_not_keep_and_the_seed_box_says_what_it_needs(export_dir, tmp_path):
    """After a reload (which the page asks for when the server moves to a new version) the page
    showed the kept seed's sample under the kept sliders, saying nothing of the upload it replaced;
    an empty seed box was the server's "seed must be an integer, got nothing", and seed 1e3 was
    drawn as 1000 but labelled "1e3"."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    Image.fromarray(real_images(1)[0][:, :, 0]).save(tmp_path / "digit.png")
    with http_server(export_dir, "--studio") as url, studio_browser.chromium() as driver:
        driver.get(url + "/")
        studio_browser.wait_until_settled(driver, "the first sample and its edit")
        driver.find_element(By.ID, "upload").send_keys(str(tmp_path / "digit.png"))
        studio_browser.wait_for(driver, lambda d: (studio_browser.settled(d) or {}).get("subject", "").startswith(
            "Upload digit.png"), "the upload's edit")
        driver.refresh()
        studio_browser.wait_until_settled(driver, "the reloaded page")
        note = driver.find_element(By.ID, "note").text
        assert note.startswith("Sample of seed 0") and note.endswith(
            " (before the reload: Upload digit.png, which the page does not keep; open it again)"), note
        assert "before the reload" not in driver.find_element(By.ID, "note-b").text  # the second image was a sample
        driver.refresh()  # the sample shown now is what the page keeps: nothing more to say
        studio_browser.wait_until_settled(driver, "the page reloaded again")
        assert "before the reload" not in driver.find_element(By.ID, "note").text

        seed = driver.find_element(By.ID, "seed")
        seed.clear()
        seed.send_keys(Keys.ENTER)
        message = studio_browser.wait_for(driver, studio_browser.error_text, "the empty seed's error")
        assert message == "sample: enter a seed, a whole number from 0", message
        seed.send_keys("1e3", Keys.ENTER)
        studio_browser.wait_for(driver, lambda d: (studio_browser.settled(d) or {}).get("subject", "").startswith(
            "Sample of seed 1000"), "the sample of seed 1e3, named 1000")
        assert studio_browser.error_text(driver) == ""


def test_the_page_waits_for_the_model_and_asks_again_until_it_answers(export_dir):
    """The page's first request failing (a tunnel's hiccup) left it dead but looking alive: every
    control shown, none working, "Loading the model..." for good and no retry."""
    from selenium.webdriver.common.by import By

    with http_server(export_dir, "--studio") as url, studio_browser.chromium() as driver:
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["*studio/api/info*"]})
        driver.get(url + "/")
        message = studio_browser.wait_for(driver, lambda d: "asking again" in studio_browser.error_text(d)
                                          and studio_browser.error_text(d), "the info request's error")
        assert message.startswith("info: cannot reach the server") and message.endswith("; asking again in 2 s"), message
        assert not driver.find_element(By.TAG_NAME, "main").is_displayed()  # no control that cannot work
        # the box sticks to the top: a control Tab focuses is scrolled into view below it, not under it
        assert driver.execute_script("return document.documentElement.style.scrollPaddingTop").endswith("px")
        driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": []})
        studio_browser.wait_until_settled(driver, "the page once the server answers", timeout=90)
        assert studio_browser.error_text(driver) == "" and driver.find_element(By.TAG_NAME, "main").is_displayed()
        assert driver.find_element(By.ID, "model-line").text.startswith("alae_")

        driver.set_network_conditions(offline=True, latency=0, throughput=0)
        driver.find_element(By.ID, "sample").click()
        studio_browser.wait_for(driver, studio_browser.error_text, "the sample's error")
        driver.find_element(By.ID, "dismiss-errors").click()  # the box could not be closed
        assert studio_browser.error_text(driver) == "" and not driver.find_element(By.ID, "error").is_displayed()


def test_a_page_of_an_older_version_is_told_to_reload(export_dir, tmp_path):
    """The server moves to a newer export while the page is open: the page's next request shows
    the server's "reload the page" error (its codes came from the old encoder), and the
    reloaded page works on the new version."""
    import json
    import shutil

    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    from serving import layout
    from serving.client import RestClient

    out = tmp_path / "export"
    shutil.copytree(export_dir / layout.ONNX, out / layout.ONNX)
    name = ALAEOnnx(out).metadata["model_name"]
    model_dir = out / layout.ONNX / name
    with http_server(out, "--studio", "--poll-seconds", "0.2") as url, studio_browser.chromium() as driver:
        driver.get(url + "/studio")
        studio_browser.wait_until_settled(driver, "the first sample and its edit")
        assert " version 1 " in driver.find_element(By.ID, "model-line").text
        # The reload the page asks for kept nothing of what the person had set (an audit's case).
        seed = driver.find_element(By.ID, "seed")
        seed.clear()
        seed.send_keys("5", Keys.ENTER)
        slider = driver.find_element(By.ID, f"direction-{DIRECTIONS[0]}")
        slider.send_keys(Keys.ARROW_RIGHT, Keys.ARROW_RIGHT)
        steps = driver.find_element(By.ID, "steps")
        steps.clear()
        steps.send_keys("4", Keys.TAB)
        studio_browser.wait_for(driver, lambda d: (studio_browser.settled(d) or {}).get("subject", "").startswith(
            "Sample of seed 5") and len(d.find_elements(By.CSS_SELECTOR, "#strip img")) == 4, "seed 5 and 4 steps")
        strength = slider.get_attribute("aria-valuetext")

        # Version 2, copied in as a whole (a copy of version 1 under its new number).
        shutil.copytree(model_dir / "1", tmp_path / "2")
        metadata = json.loads((tmp_path / "2" / layout.ONNX_METADATA).read_text())
        (tmp_path / "2" / layout.ONNX_METADATA).write_text(json.dumps({**metadata, "version": 2}))
        (tmp_path / "2").rename(model_dir / "2")
        client = RestClient(url, name, timeout=10)
        studio_browser.wait_for(driver, lambda d: client.status()["model_version_status"][0]["version"] == "2",
                                "the server to serve version 2", timeout=30)

        driver.find_element(By.ID, "sample").click()
        studio_browser.wait_for(driver, lambda d: "reload the page" in studio_browser.error_text(d), "the reload message")
        assert "now serves version 2" in studio_browser.error_text(driver)
        driver.refresh()
        studio_browser.wait_until_settled(driver, "the reloaded page")
        assert " version 2 " in driver.find_element(By.ID, "model-line").text and studio_browser.error_text(driver) == ""
        slider = driver.find_element(By.ID, f"direction-{DIRECTIONS[0]}")
        assert driver.find_element(By.ID, "seed").get_attribute("value") == "5" and slider.get_attribute("value") == "2"
        assert slider.get_attribute("aria-valuetext") == strength != "0.00"
        assert driver.find_element(By.ID, "steps").get_attribute("value") == "4"
        assert studio_browser.settled(driver)["subject"].startswith("Sample of seed 5")
        assert studio_browser.shown_edits(driver) == [{"direction": DIRECTIONS[0], "strength": float(slider.get_attribute("data-strength"))}]
        driver.find_element(By.ID, "reset").click()  # a screen reader was left reading the old strength
        assert slider.get_attribute("aria-valuetext") == "0.00" and slider.get_attribute("value") == "0"


def test_long_direction_names_show_whole_and_the_sliders_line_up(export_dir, tmp_path):
    """CelebA's attribute names (Mouth_Slightly_Open, ...) and longer ones of a user's own data:
    each name shows whole, left of its slider (a fixed 7em column cut them at ~15 characters)."""
    import json
    import shutil

    from serving import layout

    out = tmp_path / "export"
    shutil.copytree(export_dir / layout.ONNX, out / layout.ONNX)
    metadata_file = ALAEOnnx(out).path / layout.ONNX_METADATA
    metadata = json.loads(metadata_file.read_text())
    vector = metadata["directions"]["directions"][0]
    names = ["Mouth_Slightly_Open", "5_o_Clock_Shadow", "x", "smiling_with_teeth_under_studio_light_from_the_left_side"]
    metadata["directions"]["directions"] = [{**vector, "name": name} for name in names]
    metadata_file.write_text(json.dumps(metadata))

    with http_server(out, "--studio") as url, studio_browser.chromium() as driver:
        driver.get(url + "/studio")
        studio_browser.wait_until_settled(driver, "the first sample and its edit")
        rows = driver.execute_script("""return [...document.querySelectorAll('#sliders .slider')].map(row => {
            const label = row.querySelector('label'), box = label.getBoundingClientRect();
            return {name: label.textContent, right: box.right, height: box.height, overflow: label.scrollWidth - label.clientWidth,
                    slider: row.querySelector('input').getBoundingClientRect().left};
        })""")
    assert [row["name"] for row in rows] == names
    assert all(row["overflow"] <= 0 and row["right"] <= row["slider"] for row in rows), rows
    assert len({row["slider"] for row in rows}) == 1, rows  # one column of sliders
    assert rows[3]["height"] > 1.5 * rows[0]["height"]  # the longest name wraps instead of pushing the slider out


def test_a_phone_width_window_shows_every_control_without_scrolling_sideways(style_exported, tmp_path):
    """At 420 and 375 CSS pixels each panel kept a 420-pixel minimum: the strengths beside the
    sliders, the Sample button and the projection lists were cut at the window's edge."""
    from selenium.webdriver.common.by import By

    with http_server(style_exported[1], "--studio") as url, studio_browser.chromium() as driver:
        driver.get(url + "/studio")
        studio_browser.wait_until_settled(driver, "the first sample and its edit")
        assert driver.find_element(By.ID, "pair-heading").text == "3. Mix and interpolate with a second image"
        # "all" of the second's styles was the second image's reconstruction; an export without
        # directions showed an "Edited" image equal to the reconstruction.
        options = driver.execute_script("return [...document.getElementById('mix-layers').options].map(o => o.value)")
        assert options == ["coarse", "fine"]  # 8x8: no middle range
        assert not driver.find_element(By.ID, "edited-image").is_displayed()
        assert driver.find_element(By.ID, "sliders").text.startswith("This export carries no directions: fit some with "
                                                                     "python -m alae_tf.edit directions")
        for width in (420, 375):
            driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                                   {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": False})
            layout = page_layout(driver)
            assert layout["controls"] > 20 and layout["page"] <= layout["window"] and not layout["cut"], (width, layout)
        driver.save_screenshot(str(tmp_path / "studio_375.png"))


@pytest.mark.parametrize("width, height", [(1280, 800), (1400, 1000)])
def test_the_interpolation_strip_of_eight_steps_is_one_row(style_exported, width, height):
    """At 1280 pixels the default 8 steps wrapped: 7 on a row, the 8th alone below; at 1400x1000
    too once the page's scrollbar appeared after the strip was sized (an audit's browser showed
    scrollbars; the tests' had hidden them), and the size never followed a resized window."""
    with http_server(style_exported[1], "--studio") as url, \
            studio_browser.chromium(width, height, scrollbars=True) as driver:
        driver.get(url + "/studio")
        studio_browser.wait_until_settled(driver, "the first sample and its edit")
        studio_browser.wait_for(driver, lambda d: d.execute_script("return document.querySelectorAll('#strip img').length") == 8,
                                "the strip")
        for window in (None, (900, height), (700, height)):
            if window:
                driver.set_window_size(*window)
            tops, widths, heights = driver.execute_script("const images = [...document.querySelectorAll('#strip img')]; "
                                                          "return ['offsetTop', 'offsetWidth', 'offsetHeight']"
                                                          ".map(key => images.map(e => e[key]))")
            assert len(set(tops)) == 1 and widths == heights, (window, tops, widths, heights)


def page_layout(driver) -> dict:
    """The page's and the window's widths, the visible controls cut at the window's right edge, and
    how many controls are visible."""
    return driver.execute_script("""
        const visible = [...document.querySelectorAll('main button, main input, main select, main output, main img, main canvas')]
            .filter(e => e.offsetParent !== null);
        return {page: document.documentElement.scrollWidth, window: document.documentElement.clientWidth,
                cut: visible.filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 0.5)
                            .map(e => e.id || e.outerHTML.slice(0, 60)),
                controls: visible.length}""")


def test_a_projection_file_opens_in_the_page(style_exported, tmp_path):
    """python -m alae_tf.project's file of two images (w+, the tiny StyleALAE run) uploaded in the
    page: the first image and G of its projection are shown, the picker moves to the second, and
    the same file opened from the server (--projections) in the second slot mixes the two
    projections by style input as ALAEOnnx does; its picker moves that slot to its second image.
    The file holds refined noise images (--noise): the page's edit of an image opened from the
    server uses them (the page sends its ref), the upload's does not."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    from alae_tf import project as project_cli
    from serving import editing

    run, export = style_exported
    out = tmp_path / ("projections_of_the_held_out_images_" * 3)  # a long name: the lists must stay in a phone's width
    assert project_cli.main(["--run", str(run), "--images", "held-out:2", "--steps", "3", "--per-layer", "--noise",
                             "--learning-rate", "0.3", "--noise-weight", "0", "--out-dir", str(out)]) == 0
    saved = np.load(out / "projection.npz")
    styles, images = saved["styles"], saved["images"]
    noise = [saved[name] for name in sorted(saved.files) if name.startswith("noise_")]
    model = ALAEOnnx(export)

    def subject(driver):
        return (studio_browser.settled(driver) or {}).get("subject", "")

    on_server = str(out / "projection.npz")
    shown_name = f"{out.name}/projection.npz"  # the folder and the name, not the server's whole path
    with http_server(export, "--studio", "--projections", on_server) as url, studio_browser.chromium() as driver:
        driver.get(url + "/studio")
        studio_browser.wait_until_settled(driver, "the first sample and its edit")
        assert not driver.find_element(By.ID, "pick-row").is_displayed()
        choices = Select(driver.find_element(By.ID, "server-projection")).options
        assert [option.text for option in choices] == ["choose a file", f"{shown_name} (2)"]
        driver.find_element(By.ID, "upload").send_keys(str(out / "projection.npz"))
        studio_browser.wait_for(driver, lambda d: subject(d).startswith("Upload projection.npz: image 1 of 2 "), "the projection")
        assert driver.find_element(By.ID, "pick-row").is_displayed() and driver.find_element(By.ID, "pick-count").text == "2"
        assert driver.find_element(By.ID, "reconstruction-caption").text == "Projection G(w+)"
        np.testing.assert_array_equal(studio_browser.image_pixels(driver, "input-image")[:, :, :1], images[0])
        assert_close_images(studio_browser.image_pixels(driver, "reconstruction-image")[np.newaxis, :, :, :1],
                            model.decode_styles(styles[:1], as_uint8=True), "the projection shown")
        assert_close_images(studio_browser.image_pixels(driver, "edited-image")[np.newaxis, :, :, :1],
                            model.decode_styles(styles[:1], as_uint8=True), "an upload's edit: no noise")

        pick = driver.find_element(By.ID, "pick")
        pick.clear()
        pick.send_keys("2", Keys.TAB)
        studio_browser.wait_for(driver, lambda d: subject(d).startswith("Upload projection.npz: image 2 of 2 "), "the second image")
        for typed, number in (("0", 1), ("99", 2)):  # beyond the images: the nearest (the server's error counted from 0)
            pick.clear()
            pick.send_keys(typed, Keys.TAB)
            studio_browser.wait_for(driver, lambda d: subject(d).startswith(f"Upload projection.npz: image {number} of 2 ")
                                    and pick.get_attribute("value") == str(number), f"image {number} for {typed}")
        assert studio_browser.error_text(driver) == ""
        np.testing.assert_array_equal(studio_browser.image_pixels(driver, "input-image")[:, :, :1], images[1])

        Select(driver.find_element(By.ID, "server-projection-b")).select_by_index(1)
        studio_browser.wait_for(driver, lambda d: d.find_element(By.ID, "note-b").text.startswith(
            f"Projection {shown_name}: image 1 of 2 ") and studio_browser.settled(d), "the second slot's projection")
        start, stop = model.layer_ranges["coarse"]
        expected = model.decode_styles(editing.mix_styles(styles[1:2], styles[:1], start, stop, model.num_styles), as_uint8=True)
        studio_browser.wait_for(driver, lambda d: driver.execute_script("return window.studio.pending === 0"), "the mix")
        assert_close_images(studio_browser.image_pixels(driver, "mix-image")[np.newaxis, :, :, :1], expected,
                            "image 2's projection with image 1's coarse styles")
        assert studio_browser.error_text(driver) == ""
        pick_b = driver.find_element(By.ID, "pick-b")
        pick_b.clear()
        pick_b.send_keys("2", Keys.TAB)
        studio_browser.wait_for(driver, lambda d: d.find_element(By.ID, "note-b").text.startswith(
            f"Projection {shown_name}: image 2 of 2 "), "the server file's second image")
        np.testing.assert_array_equal(studio_browser.image_pixels(driver, "b-image")[:, :, :1], images[1])

        Select(driver.find_element(By.ID, "server-projection")).select_by_index(1)  # the first slot, from the server
        studio_browser.wait_for(driver, lambda d: subject(d).startswith(f"Projection {shown_name}: image 1 of 2 "), "it")
        with_noise = model.decode_styles(styles[:1], as_uint8=True, noise=[n[:1] for n in noise])
        assert np.abs(with_noise.astype(int) - model.decode_styles(styles[:1], as_uint8=True)).max() > 3
        for shown in ("reconstruction-image", "edited-image"):
            assert_close_images(studio_browser.image_pixels(driver, shown)[np.newaxis, :, :, :1], with_noise, shown)

        driver.find_element(By.ID, "psi").send_keys(Keys.ARROW_RIGHT)  # psi draws a sample again, not this image
        driver.find_element(By.ID, "steps").send_keys(Keys.ARROW_UP)  # (a change the page does answer, to wait for)
        studio_browser.wait_for(driver, lambda d: driver.execute_script("return window.studio.pending === 0"), "the strip")
        assert subject(driver).startswith(f"Projection {shown_name}: image 1 of 2 "), subject(driver)

        for width in (390, 375):  # the lists of long file names stay inside a phone's width
            driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                                   {"width": width, "height": 844, "deviceScaleFactor": 1, "mobile": False})
            layout = page_layout(driver)
            assert layout["page"] <= layout["window"] and not layout["cut"], (width, layout)
        driver.save_screenshot(str(tmp_path / "studio_375_projections.png"))
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})

        driver.find_element(By.ID, "sample").click()  # a sample is no projection: the picker goes
        studio_browser.wait_for(driver, lambda d: subject(d).startswith("Sample of seed"), "the sample")
        assert not driver.find_element(By.ID, "pick-row").is_displayed()
        assert driver.find_element(By.ID, "reconstruction-caption").text == "Reconstruction G(E(x))"
        # The list is back at "choose a file" once another image is shown: choosing the same file
        # again after the sample opens it again (a select fires no change for the option it shows).
        server_files = Select(driver.find_element(By.ID, "server-projection"))
        assert server_files.first_selected_option.text == "choose a file"
        server_files.select_by_index(1)
        studio_browser.wait_for(driver, lambda d: subject(d).startswith(f"Projection {shown_name}: image 1 of 2 "),
                                "the same server file again")


def draw_a_stroke(driver, canvas, left=0.0, top=-1 / 3, bottom=1 / 3):
    """A vertical line with the mouse, `left` of the canvas's middle and from `top` to `bottom` of
    it (shares of its width and height; by default down the middle, 2/3 of its height)."""
    from selenium.webdriver.common.action_chains import ActionChains

    width, height = canvas.size["width"], canvas.size["height"]
    ActionChains(driver).move_to_element_with_offset(canvas, round(-left * width), round(top * height)).click_and_hold() \
        .move_to_element_with_offset(canvas, round(-left * width), round(bottom * height)).release().perform()


def test_with_align_digits_a_small_drawing_off_to_the_side_is_framed_as_mnists_digits_are(export_dir):
    """A short stroke near the canvas's left edge: resized whole it would be ~9 rows tall about
    column 5; framed, it fills MNIST's 20-row box about the middle column."""
    from selenium.webdriver.common.by import By

    with http_server(export_dir, "--studio", "--align-digits") as url, studio_browser.chromium() as driver:
        driver.get(url + "/")
        studio_browser.wait_until_settled(driver, "the first sample and its edit")
        assert driver.find_element(By.ID, "model-line").text.endswith(
            "Uploaded photos and drawings are framed as MNIST's digits (light strokes on black, in a box of 20/28 of "
            "the side, centred by their mass).")
        draw_a_stroke(driver, driver.find_element(By.ID, "canvas"), left=0.33, top=-1 / 6, bottom=1 / 6)
        driver.find_element(By.ID, "use-drawing").click()
        studio_browser.wait_for(driver, lambda d: (studio_browser.settled(d) or {}).get("subject", "").startswith(
            "Drawing"), "the drawing's edit")
        assert driver.find_element(By.ID, "note").text == ("Drawing: PNG 280x280: its digit framed as MNIST's (28x28), "
                                                           "converted from RGBA to grayscale")  # the canvas's PNG
        framed = studio_browser.image_pixels(driver, "input-image")[:, :, 0].astype(np.float64)
        rows, columns = np.nonzero(framed > 128)
        assert np.ptp(rows) + 1 in (19, 20, 21) and np.ptp(columns) + 1 <= 6  # a tall thin stroke: a "1"
        centre = (columns * framed[rows, columns]).sum() / framed[rows, columns].sum()
        assert abs(centre - 13.5) <= 1, centre
