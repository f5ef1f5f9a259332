"""Real images as MNIST digits: a digit photographed dark-on-light on grey paper is recovered and read alike."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

import netlearn
from netlearn.cli import main
from netlearn.data.images import ImageError, load_digit, prepare_digit, read_image


def draw_digit(c: int, rng: np.random.Generator | None = None, size: int = 200) -> np.ndarray:
    """A white-on-black drawing of class ``c`` (0: a ring, 1: a bar, 2: a seven), slightly varied by ``rng``."""
    g = rng or np.random.default_rng(0)
    im = Image.new("L", (size, size), 0)
    d = ImageDraw.Draw(im)
    j = lambda v: v * size + g.uniform(-0.04, 0.04) * size  # noqa: E731
    w = int(size * g.uniform(0.07, 0.11))
    if c == 0:
        d.ellipse([j(0.3), j(0.15), j(0.7), j(0.85)], outline=255, width=w)
    elif c == 1:
        d.line([(j(0.5), j(0.15)), (j(0.5), j(0.85))], fill=255, width=w)
    else:
        d.line([(j(0.25), j(0.18)), (j(0.75), j(0.18)), (j(0.42), j(0.85))], fill=255, width=w, joint="curve")
    return np.asarray(im, np.float32) / 255


def photograph(digit: np.ndarray, path, seed: int = 0) -> None:
    """The digit as dark ink on greyish, uneven, yellowish paper, off-centre in a 300x300 colour JPEG."""
    g = np.random.default_rng(seed)
    paper = np.full((300, 300), 0.78) + np.linspace(-0.05, 0.05, 300)[None, :]  # uneven lighting
    small = np.asarray(Image.fromarray(digit).resize((150, 150), Image.Resampling.BILINEAR))
    ink = np.zeros((300, 300))
    ink[40:190, 110:260] = small
    grey = paper * (1 - ink) + 0.15 * ink + g.normal(0, 0.02, (300, 300))
    rgb = np.clip(np.stack([grey * 1.0, grey * 0.97, grey * 0.85], axis=-1), 0, 1)
    Image.fromarray((rgb * 255).astype(np.uint8), "RGB").save(path, quality=80)


def test_photographed_digit_is_recovered(tmp_path):
    for c in range(3):
        original = prepare_digit(draw_digit(c))
        assert original.shape == (784,) and 0.9 < original.max() <= 1
        photo = tmp_path / f"d{c}.jpg"
        photograph(draw_digit(c), photo, seed=c)
        got = load_digit(photo)
        assert np.corrcoef(got, original)[0, 1] > 0.9, c
        assert np.abs(got - original).mean() < 0.06, c
        # Centre of mass in the middle, like MNIST.
        img = got.reshape(28, 28)
        yy, xx = np.indices(img.shape)
        assert abs((yy * img).sum() / img.sum() - 14) < 0.5 and abs((xx * img).sum() / img.sum() - 14) < 0.5
        # The bounding box's longest side is MNIST's 20 pixels.
        rows, cols = np.flatnonzero(img.max(axis=1) > 0.05), np.flatnonzero(img.max(axis=0) > 0.05)
        assert 18 <= max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1 <= 21


def test_polarity_and_transparency(tmp_path):
    digit = draw_digit(2)
    a = prepare_digit(digit)
    np.testing.assert_allclose(prepare_digit(1 - digit), a, atol=1e-5)  # dark-on-light is inverted
    rgba = np.zeros((200, 200, 4), np.uint8)
    rgba[..., 3] = (digit * 255).astype(np.uint8)  # black ink whose alpha is the drawing, on nothing
    Image.fromarray(rgba, "RGBA").save(tmp_path / "t.png")
    assert np.corrcoef(load_digit(tmp_path / "t.png"), a)[0, 1] > 0.98
    Image.fromarray((digit * 65535).astype(np.uint16)).save(tmp_path / "16bit.png")
    assert np.corrcoef(load_digit(tmp_path / "16bit.png"), a)[0, 1] > 0.98


def test_bad_files(tmp_path):
    (tmp_path / "notes.jpg").write_text("not an image at all")
    with pytest.raises(ImageError, match="not an image"):
        read_image(tmp_path / "notes.jpg")
    Image.new("L", (50, 50), 200).save(tmp_path / "blank.png")
    with pytest.raises(ImageError, match="no digit"):
        load_digit(tmp_path / "blank.png")
    good = tmp_path / "good.png"
    Image.fromarray((draw_digit(1) * 255).astype(np.uint8)).save(good)
    good.write_bytes(good.read_bytes()[:60])  # truncated
    with pytest.raises(ImageError):
        load_digit(good)


def train_small_model(path):
    """A [784, 30, 3] network on prepared drawings of the three classes (a few seconds)."""
    g = np.random.default_rng(1)
    y = np.repeat(np.arange(3), 60)
    X = np.stack([prepare_digit(draw_digit(int(c), g, size=100)) for c in y])
    net = netlearn.Network([784, 30, 3], seed=0)
    net.fit((X, y), 20, 10, 0.5, seed=0)
    assert net.accuracy((X, y)) > 0.95
    net.save(path)
    return net


def test_predict_on_photographed_digits_agrees_with_the_originals(tmp_path, capsys):
    model = tmp_path / "m.json"
    net = train_small_model(model)
    photos = []
    for c in range(3):
        photos.append(tmp_path / f"photo{c}.jpg")
        photograph(draw_digit(c, np.random.default_rng(10 + c)), photos[-1], seed=c)
    expected = [int(net.predict(prepare_digit(draw_digit(c, np.random.default_rng(10 + c)))[None])[0])
                for c in range(3)]
    assert expected == [0, 1, 2]
    out = tmp_path / "p.json"
    assert main(["predict", str(model), *map(str, photos), "--json", str(out)]) == 0
    got = json.loads(out.read_text())
    assert [d["file"] for d in got] == [str(p) for p in photos]
    assert [d["prediction"] for d in got] == expected
    assert all(len(d["probabilities"]) == 3 and np.isclose(sum(d["probabilities"]), 1) for d in got)
    assert "photo0.jpg: 0" in capsys.readouterr().out
    # The photo taken as it is (a grey page) is not a digit the network knows.
    assert main(["predict", str(model), str(photos[2]), "--no-preprocess"]) == 0
    assert "--invert" in capsys.readouterr().err


def test_predict_refuses_a_non_image_without_blaming_the_download(tmp_path, capsys):
    model = tmp_path / "m.json"
    netlearn.Network([784, 5, 3], seed=0).save(model)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    assert main(["predict", str(model), str(text)]) == 2
    err = capsys.readouterr().err
    assert "not an image" in err and "elete" not in err and "download" not in err and err.count("\n") == 1


MNIST_ROOT = os.environ.get("NETLEARN_DATA")


@pytest.mark.skipif(not MNIST_ROOT or not (Path(MNIST_ROOT) / "mnist").is_dir(),
                    reason="set NETLEARN_DATA to a data root holding mnist/ to run")
def test_photographed_mnist_digits_read_as_the_originals(tmp_path):
    (X, y), _, (Xt, yt) = netlearn.data.load_mnist()
    net = netlearn.Network([784, 30, 10], seed=0)
    net.fit((X[:10_000], y[:10_000]), 5, 10, 0.5, lmbda=1.0, seed=0)
    same, close = 0, []
    for i in range(40):
        big = np.asarray(Image.fromarray(Xt[i].reshape(28, 28)).resize((200, 200), Image.Resampling.BICUBIC))
        photograph(np.clip(big, 0, 1), tmp_path / "m.jpg", seed=i)
        got = load_digit(tmp_path / "m.jpg")
        close.append(np.corrcoef(got, Xt[i])[0, 1])
        same += int(net.predict(got[None])[0] == net.predict(Xt[i:i + 1])[0])
    assert np.median(close) > 0.9 and same >= 36


def test_a_camera_sized_image_is_reduced_first(tmp_path):
    digit = draw_digit(2, size=2400)
    Image.fromarray(((1 - digit) * 200 + 40).astype(np.uint8)).save(tmp_path / "big.jpg")
    assert max(read_image(tmp_path / "big.jpg").shape) == 1024
    assert np.corrcoef(load_digit(tmp_path / "big.jpg"), prepare_digit(draw_digit(2)))[0, 1] > 0.98
