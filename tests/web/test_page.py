"""The web page in headless Chromium against real backends on 127.0.0.1 (see conftest.py).

Each test drives the page as a user would (file picker, drag and drop, slider, buttons, the key
prompt), compares what is drawn with what the API returned, and saves a screenshot under
test-artifacts/web/. Every test also asserts (in `watched_page`) that the page threw no
exception and requested nothing outside its own server.
"""

from __future__ import annotations

import asyncio
import base64
import io
import shutil
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from PIL import Image
from playwright.sync_api import Locator, Page, Response, expect

from backend.inference.dummy import DummyClient
from tests.backend.helpers import API, BackendServer, circles_png, running_backend
from tests.web.browser import KEY_STORAGE, PHONE, watched_page
from tests.web.conftest import API_KEY, MAX_UPLOAD_BYTES, STATIC_DIR

DEFAULT_SCORE_THRESHOLD = 0.5  # the backend's SCORE_THRESHOLD default
DASH = "\N{EN DASH}"  # the pager says "1<EN DASH>12 of 30"
VISIBLE_CIRCLES = "svg.overlay circle.det:not(.is-hidden)"


def dummy_scores(data: bytes) -> list[float]:
    """The scores of every circle the backend's DummyClient (seed 0, as in the server) makes
    up for `data`, weakest included."""
    width, height = Image.open(io.BytesIO(data)).size
    call = DummyClient("circle-detector", seed=0).infer(
        data, width=width, height=height, score_threshold=0.0, max_detections=100
    )
    # Playwright's sync API runs an event loop in this thread: run the coroutine in another.
    with ThreadPoolExecutor(1) as pool:
        return [c.score for c in pool.submit(asyncio.run, call).result().circles]


def png_with_circles(min_count: int, first_seed: int = 0, weaker: bool = False) -> bytes:
    """A test image for which the dummy model keeps at least `min_count` circles with distinct
    scores at the default threshold (and, with `weaker`, also makes up weaker ones)."""
    for seed in range(first_seed, first_seed + 500):
        data = circles_png(seed)
        scores = dummy_scores(data)
        kept = {s for s in scores if s >= DEFAULT_SCORE_THRESHOLD}
        if len(kept) >= min_count and (not weaker or len(kept) < len(scores)):
            return data
    raise AssertionError("no seed gives enough circles")


def is_upload(response: Response) -> bool:
    return response.url.endswith(API) and response.request.method == "POST"


def api_image(server: BackendServer, image_id: str) -> httpx.Response:
    with server.client() as client:
        return client.get(f"{API}{image_id}")


def api_total(server: BackendServer) -> int:
    with server.client() as client:
        return client.get(API, params={"limit": 1}).json()["total"]


def pick_files(page: Page, files: list[tuple[str, str, bytes]]) -> None:
    """Choose files with the page's file picker."""
    page.set_input_files(
        "#file-input", files=[{"name": n, "mimeType": t, "buffer": b} for n, t, b in files]
    )


def drop_files(page: Page, files: list[tuple[str, str, bytes]]) -> None:
    """Drop files on the drop zone, as a drag from the desktop does (a real DataTransfer)."""
    payload = [[n, t, base64.b64encode(b).decode()] for n, t, b in files]
    transfer = page.evaluate_handle(
        """(files) => {
            const dt = new DataTransfer();
            for (const [name, type, b64] of files) {
                const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
                dt.items.add(new File([bytes], name, { type }));
            }
            return dt;
        }""",
        payload,
    )
    for event in ("dragenter", "dragover", "drop"):
        page.dispatch_event("#drop", event, {"dataTransfer": transfer})


def viewer_of(page: Page, image_id: str, scope: str = "") -> Locator:
    return page.locator(f"{scope} article.viewer[data-image-id='{image_id}']".strip())


def assert_circles_match(viewer: Locator, objects: list[dict]) -> None:
    """Every circle the API returned is drawn once, where the API put it, over the picture."""
    circles = viewer.locator("svg.overlay circle.det")
    expect(circles).to_have_count(len(objects))
    expect(viewer.locator("table.objects tbody tr")).to_have_count(len(objects))
    drawn = circles.evaluate_all(
        "cs => cs.map(c => [+c.getAttribute('cx'), +c.getAttribute('cy'), +c.getAttribute('r')])"
    )
    expected = [[o["center"]["x"], o["center"]["y"], o["radius"]] for o in objects]
    for got, want in zip(sorted(drawn), sorted(expected), strict=True):
        assert got == pytest.approx(want)
    # The overlay lies exactly on the picture and scales with it (measured in one go, since
    # the page may be scrolling).
    img, svg = viewer.evaluate(
        """v => [".stage img", "svg.overlay"].map(sel => {
            const r = v.querySelector(sel).getBoundingClientRect();
            return [r.x, r.y, r.width, r.height];
        })"""
    )
    assert img[2] > 0
    assert svg == pytest.approx(img, abs=1.0)


def test_upload_draws_the_circles_and_the_slider_hides_weaker_ones(browser, web_backend):
    data = png_with_circles(3, weaker=True)
    with watched_page(browser, web_backend.url, api_key=API_KEY) as w:
        page = w.page
        with page.expect_response(is_upload) as rsp:
            pick_files(page, [("three.png", "image/png", data)])
        assert rsp.value.status == 201
        image = rsp.value.json()
        objects = image["objects"]
        assert len(objects) >= 3
        assert api_image(web_backend, image["id"]).json()["objects"] == objects

        viewer = viewer_of(page, image["id"], "#results")
        expect(viewer.locator(".stage img")).to_have_js_property("complete", True)
        assert_circles_match(viewer, objects)
        n = len(objects)
        expect(viewer.locator(VISIBLE_CIRCLES)).to_have_count(n)
        expect(viewer.locator(".shown-count")).to_have_text(f"{n} of {n} circles shown")
        # The best circle's centre sits where the API says, in screen pixels too.
        img, best = viewer.evaluate(
            """v => [".stage img", "circle.det[data-rank='0']"].map(sel => {
                const r = v.querySelector(sel).getBoundingClientRect();
                return [r.x, r.y, r.width, r.height];
            })"""
        )
        scale = img[2] / image["width"]
        centre = objects[0]["center"]
        assert best[0] + best[2] / 2 == pytest.approx(img[0] + centre["x"] * scale, abs=3)
        assert best[1] + best[3] / 2 == pytest.approx(img[1] + centre["y"] * scale, abs=3)

        # Pointing at a table row marks its circle.
        viewer.locator("table.objects tbody tr[data-rank='1']").hover()
        expect(viewer.locator("circle.det[data-rank='1']")).to_have_class("det active")

        # Drag the slider to between the weakest and the strongest score: fewer circles.
        scores = sorted(o["score"] for o in objects)
        target = (scores[0] + scores[-1]) / 2
        slider = viewer.locator("input.threshold")
        sbox = slider.bounding_box()
        page.mouse.click(sbox["x"] + target * sbox["width"], sbox["y"] + sbox["height"] / 2)
        value = float(slider.input_value())
        assert scores[0] < value <= scores[-1]
        kept = sum(1 for s in scores if s >= value)
        assert 0 < kept < n
        expect(viewer.locator(VISIBLE_CIRCLES)).to_have_count(kept)
        expect(viewer.locator("table.objects tbody tr:not(.is-hidden)")).to_have_count(kept)
        expect(viewer.locator(".shown-count")).to_have_text(f"{kept} of {n} circles shown")
        for circle in viewer.locator("svg.overlay circle.det.is-hidden").all():
            expect(circle).to_be_hidden()
        w.screenshot("upload-and-slider")

        # Back to the lowest position: every circle again.
        slider.focus()
        page.keyboard.press("Home")
        expect(viewer.locator(VISIBLE_CIRCLES)).to_have_count(n)
        expect(viewer.locator("output")).to_have_text("0.00")

        # Detect again at that minimum score: the weaker circles the first run dropped appear.
        detect = f"{API}{image['id']}/detect"
        with page.expect_response(lambda r: detect in r.url) as rsp:
            viewer.locator("button.detect").click()
        assert rsp.value.status == 200
        assert "score_threshold=0" in rsp.value.url
        again = rsp.value.json()
        assert again["score_threshold"] == 0
        assert len(again["objects"]) > n
        assert_circles_match(viewer, again["objects"])
        expect(viewer.locator(VISIBLE_CIRCLES)).to_have_count(len(again["objects"]))
        assert api_image(web_backend, image["id"]).json()["objects"] == again["objects"]


def test_history_pages_opens_and_deletes(browser, web_backend):
    """Several uploads by drag and drop, then the paginated history: open one, delete it."""
    with web_backend.client() as client:  # enough earlier uploads for a second history page
        for seed in range(1000, 1013):
            assert client.post(
                API, files={"file": (f"old-{seed}.png", circles_png(seed), "image/png")}
            ).status_code in (201, 202)
    dropped = [
        ("dropped-a.png", "image/png", circles_png(2000)),
        ("dropped-b.jpg", "image/jpeg", circles_png(2001, fmt="JPEG")),
    ]
    with watched_page(browser, web_backend.url, api_key=API_KEY) as w:
        page = w.page
        drop_files(page, dropped)
        expect(page.locator("#results article.viewer[data-image-id]")).to_have_count(2)
        expect(page.locator("#results .viewer h3")).to_have_text(["dropped-b.jpg", "dropped-a.png"])

        total = api_total(web_backend)
        history = page.locator("#history li")
        expect(page.locator("#history-range")).to_have_text(f"1{DASH}12 of {total}")
        expect(history).to_have_count(12)
        # Newest first: the two dropped files lead the first page.
        expect(history.locator(".name").first).to_have_text("dropped-b.jpg")
        page.click("#history-older")
        second = min(total, 24)
        expect(page.locator("#history-range")).to_have_text(f"13{DASH}{second} of {total}")
        expect(history).to_have_count(second - 12)
        expect(page.locator("#history-newer")).to_be_enabled()
        expect(page.locator("#history-older")).to_be_enabled(enabled=total > 24)
        page.click("#history-newer")
        expect(page.locator("#history-range")).to_have_text(f"1{DASH}12 of {total}")

        # Open the second thumbnail (dropped-a.png) and compare with the API.
        item = history.nth(1)
        image_id = item.get_attribute("data-image-id")
        item.locator("button").click()
        detail = viewer_of(page, image_id, "#detail")
        expect(detail.locator("h3")).to_have_text("dropped-a.png")
        assert_circles_match(detail, api_image(web_backend, image_id).json()["objects"])
        w.screenshot("history-open")

        detail.locator("button.delete").click()  # the confirmation is accepted
        expect(page.locator("#detail")).to_contain_text("“dropped-a.png” was deleted.")
        expect(page.locator("#history-range")).to_have_text(f"1{DASH}12 of {total - 1}")
        expect(page.locator(f"#history li[data-image-id='{image_id}']")).to_have_count(0)
        assert api_image(web_backend, image_id).status_code == 404
        # The same image among this visit's uploads is marked as gone too.
        expect(viewer_of(page, image_id, "#results")).to_have_text("“dropped-a.png” was deleted.")
        w.screenshot("history-deleted")


def test_bad_files_are_refused_in_plain_words(browser, web_backend):
    before = api_total(web_backend)
    good = circles_png(3000)
    files = [
        ("notes.txt", "text/plain", b"these are my notes, not a picture\n" * 20),
        ("cut.png", "image/png", good[: len(good) // 2]),
        ("huge.bmp", "image/bmp", b"BM" + bytes(MAX_UPLOAD_BYTES + 1024)),
    ]
    with watched_page(browser, web_backend.url, api_key=API_KEY) as w:
        page = w.page
        pick_files(page, files)
        failed = page.locator("#results .failed-upload")
        expect(failed).to_have_count(3)
        expect(failed.filter(has_text="notes.txt").locator("[role=alert]")).to_contain_text(
            "“notes.txt” is not an image this service can read. Use PNG, JPEG, BMP, TIFF or WebP."
        )
        expect(failed.filter(has_text="cut.png").locator("[role=alert]")).to_contain_text(
            "“cut.png” could not be read as an image"
        )
        expect(failed.filter(has_text="huge.bmp").locator("[role=alert]")).to_contain_text(
            "“huge.bmp” is too large: the limit is 256 KiB."
        )
        w.screenshot("bad-files")
    assert api_total(web_backend) == before  # nothing was kept


def test_model_server_down_keeps_the_image_and_says_detection_is_pending(
    browser, model_down_web_backend
):
    """Phone-sized screen; no API key configured on this backend."""
    server = model_down_web_backend
    with watched_page(browser, server.url, viewport=PHONE) as w:
        page = w.page
        with page.expect_response(is_upload) as rsp:
            pick_files(page, [("waiting.png", "image/png", circles_png(4000))])
        assert rsp.value.status == 202
        image_id = rsp.value.json()["id"]
        viewer = viewer_of(page, image_id, "#results")
        expect(viewer.locator(".badge")).to_have_text("pending")
        expect(viewer.locator(".problem")).to_contain_text("Image kept, detection pending")
        expect(viewer.locator(".stage img")).to_have_js_property("complete", True)
        assert viewer.locator(".stage img").evaluate("img => img.naturalWidth") == 160
        expect(page.locator("#history li .badge")).to_have_text(["pending"])

        viewer.locator("button.detect").click()
        expect(viewer.locator(".problem [role=alert]")).to_contain_text(
            "Model server unavailable: image kept, detection pending."
        )
        expect(viewer.locator("button.detect")).to_be_enabled()
        assert api_image(server, image_id).json()["status"] == "pending"
        w.screenshot("model-down-phone")
        no_overflow(page)


def test_api_key_is_asked_for_kept_for_the_tab_and_sent(browser, web_backend):
    with watched_page(browser, web_backend.url) as w:
        page = w.page
        keys_sent: list[str | None] = []
        page.on(
            "request",
            lambda r: keys_sent.append(r.headers.get("x-api-key")) if r.method == "POST" else None,
        )
        pick_files(page, [("keyed.png", "image/png", circles_png(5000))])
        dialog = page.locator("#key-dialog")
        expect(dialog).to_be_visible()
        expect(page.locator("#key-reason")).to_contain_text("needs an API key")

        page.fill("#key-input", "wrong-key")
        page.click("#key-ok")
        expect(dialog).to_be_visible()
        expect(page.locator("#key-reason")).to_contain_text("The key was refused (invalid API key)")
        expect(page.locator("#key-state")).to_be_hidden()  # a refused key is not kept
        w.screenshot("api-key-prompt")

        page.fill("#key-input", API_KEY)
        page.click("#key-ok")
        expect(dialog).to_be_hidden()
        expect(page.locator("#results article.viewer[data-image-id]")).to_have_count(1)
        expect(page.locator("#results .badge")).to_have_text("done")
        assert keys_sent == [None, "wrong-key", API_KEY]
        assert page.evaluate(f"sessionStorage.getItem({KEY_STORAGE!r})") == API_KEY
        expect(page.locator("#key-state")).to_be_visible()

        # The key is kept for the tab: a delete goes through without asking.
        page.locator("#results button.delete").click()
        expect(page.locator("#results")).to_contain_text("“keyed.png” was deleted.")

        # Forgotten, then refused: the user is told, nothing changes.
        page.click("#forget-key")
        expect(page.locator("#key-state")).to_be_hidden()
        pick_files(page, [("refused.png", "image/png", circles_png(5001))])
        expect(dialog).to_be_visible()
        page.click("#key-cancel")
        expect(page.locator("#results .failed-upload [role=alert]")).to_contain_text(
            "This needs a valid API key."
        )
        w.screenshot("api-key-refused")


def test_phone_layout_fits_the_screen(browser, web_backend):
    """A phone-sized screen, in the dark colour scheme (the screenshot shows both)."""
    with watched_page(
        browser, web_backend.url, viewport=PHONE, api_key=API_KEY, color_scheme="dark"
    ) as w:
        page = w.page
        pick_files(page, [("phone.png", "image/png", png_with_circles(2, first_seed=6000))])
        viewer = page.locator("#results article.viewer[data-image-id]")
        expect(viewer.locator(".badge")).to_have_text("done")
        expect(viewer.locator(".stage img")).to_have_js_property("complete", True)
        w.screenshot("phone-upload")
        stage = viewer.locator(".stage").bounding_box()
        assert stage["x"] > 0 and stage["x"] + stage["width"] <= PHONE["width"]
        no_overflow(page)


def no_overflow(page: Page) -> None:
    """Nothing sticks out sideways (no horizontal scrolling on a phone)."""
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], width


def test_a_format_the_browser_cannot_show_falls_back_to_the_annotated_png(browser, web_backend):
    """Chromium cannot show TIFF: the page shows the server's annotated PNG instead."""
    data = circles_png(7000, fmt="TIFF")
    with watched_page(browser, web_backend.url, api_key=API_KEY) as w:
        page = w.page
        with page.expect_response(is_upload) as rsp:
            pick_files(page, [("scan.tif", "image/tiff", data)])
        image = rsp.value.json()
        viewer = viewer_of(page, image["id"], "#results")
        picture = viewer.locator(".stage img")
        expect(picture).to_have_attribute("src", image["links"]["annotated"])
        expect(picture).to_have_js_property("naturalWidth", image["width"])
        expect(viewer.locator("svg.overlay")).to_have_count(0)
        expect(viewer).to_contain_text("This browser cannot show this format")
        expect(viewer.locator("table.objects tbody tr")).to_have_count(len(image["objects"]))
        thumb = page.locator(f"#history li[data-image-id='{image['id']}'] img")
        expect(thumb).to_have_attribute("src", image["links"]["thumbnail"])  # a JPEG: any format
        expect(thumb).to_have_js_property("naturalWidth", image["width"])  # small: not scaled
        w.screenshot("tiff-fallback")


def test_a_hostile_file_name_is_shown_as_text(browser, web_backend):
    """File names are the user's (or an attacker's) text: never parsed as HTML."""
    name = '<img src=x onerror="window.pwned=1"><b>bold.png'  # no "/": the server keeps it whole
    with watched_page(browser, web_backend.url, api_key=API_KEY) as w:
        page = w.page
        with page.expect_response(is_upload) as rsp:
            pick_files(page, [(name, "image/png", circles_png(8000))])
        stored = rsp.value.json()["filename"]  # Chromium sends the quotes as %22
        assert stored.startswith("<img src=x onerror=") and stored.endswith("<b>bold.png")
        viewer = page.locator("#results article.viewer[data-image-id]")
        expect(viewer.locator("h3")).to_have_text(stored)
        expect(page.locator("#history li .name").first).to_have_text(stored)
        assert page.locator("main b, main img[src='x']").count() == 0
        assert page.evaluate("window.pwned") is None
        w.screenshot("hostile-name")


def test_storage_unavailable_is_told_apart_from_a_model_server_outage(browser, tmp_path):
    """A 503 on upload (storage broken: its folder replaced by a file) keeps nothing, and the
    page must not claim that the image was kept."""
    env = {"MODE": "dummy", "DATABASE_URL": "", "STATIC_DIR": str(STATIC_DIR), "API_KEY": ""}
    with running_backend(tmp_path / "data", env) as server:
        shutil.rmtree(server.storage_dir)
        server.storage_dir.write_text("not a folder")
        with watched_page(browser, server.url) as w:
            page = w.page
            with page.expect_response(is_upload) as rsp:
                pick_files(page, [("lost.png", "image/png", circles_png(9000))])
            assert rsp.value.status == 503
            alert = page.locator("#results .failed-upload [role=alert]")
            expect(alert).to_contain_text("storage or database is unavailable. Try again later.")
            expect(alert).not_to_contain_text("image kept")
            w.screenshot("storage-unavailable")
        assert api_total(server) == 0
