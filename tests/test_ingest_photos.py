"""Photos: EXIF time (with its offset), GPS coordinates and the nearest place from the offline
GeoNames gazetteer, the camera; the file's time when EXIF has none; an unreadable image is
reported and skipped; no caption unless a captioning model is configured."""

from __future__ import annotations

import os
import shutil
import socket
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from engram import Memory
from engram.errors import InvalidInput
from engram.ingest.photos import nearest_place
from engram.model import Kind, MemoryEntry

PHOTOS = Path(__file__).parent / "data" / "ingest" / "photos"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """The fixture photos, with a known modification time for the ones without EXIF."""
    copy = Path(shutil.copytree(PHOTOS, tmp_path / "photos"))
    moment = datetime(2023, 12, 24, 18, 0, tzinfo=UTC).timestamp()
    for name in ("scan.jpg", "drawing.png"):
        os.utime(copy / name, (moment, moment))
    return copy


@pytest.fixture
def mem(keyword_mem: Memory) -> Memory:
    return keyword_mem


def photos(mem: Memory) -> dict[str, MemoryEntry]:
    return {e.sources[0].ref or "": e for e in mem.list(user_id="ada", tags=["ingest:photos"])}


def test_exif_time_place_and_camera(mem: Memory, folder: Path) -> None:
    summary = mem.ingest("photos", folder, user_id="ada")
    assert (summary.added, summary.errors) == (4, 1)
    assert summary.problems[0].startswith("broken.jpg: not a readable image")
    found = photos(mem)
    porto = found["2024/porto/IMG_0001.jpg"]
    assert porto.content == ("Photo IMG_0001.jpg, taken 2024-07-12 12:03 near Porto, Porto, "
                             "PT (41.1455, -8.6110); camera Apple iPhone 12.")
    assert porto.occurred_at == datetime(2024, 7, 12, 12, 3,
                                         tzinfo=timezone(timedelta(hours=1)))
    assert porto.memory_type is Kind.EVENT
    assert porto.metadata["place"] == {"name": "Porto", "admin1": "Porto", "cc": "PT"}
    assert porto.metadata["attachments"] == ["2024/porto/IMG_0001.jpg"]
    assert "caption" not in porto.metadata  # no captioning model configured
    sydney = found["2024/IMG_0002.jpg"]
    assert "near Sydney, New South Wales, AU (-33.8688, 151.2093)" in sydney.content
    assert sydney.occurred_at == datetime(2024, 8, 1, 18, 30, tzinfo=UTC)  # no offset: UTC
    scan = found["scan.jpg"]
    assert scan.content == "Photo scan.jpg, taken 2023-12-24 18:00."
    assert scan.metadata["time_from"] == "file"
    again = mem.ingest("photos", folder, user_id="ada")
    assert (again.added, again.unchanged, again.errors) == (0, 4, 1)


def test_the_gazetteer_answers_without_a_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the gazetteer tried to reach the network")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    assert nearest_place(38.7223, -9.1393)["name"] == "Lisbon"
    assert nearest_place(35.0116, 135.7681)["cc"] == "JP"


def test_a_captioning_model_that_is_not_on_disk_is_one_error(mem: Memory,
                                                             folder: Path) -> None:
    with pytest.raises(InvalidInput, match="is not a model folder"):
        mem.ingest("photos", folder, user_id="ada", caption_model=str(folder / "no-model"))
    assert mem.count(user_id="ada") == 0


@pytest.fixture(scope="module")
def tiny_captioner(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A BLIP captioning model built from a config (random weights, a 15-word vocabulary;
    its language head is biased to the word "river"), saved as a local Hugging Face folder:
    the real transformers code path without downloading a model."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    folder = tmp_path_factory.mktemp("blip")
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "photo", "of", "river",
             "boat", "tree", "city", "the", "sunset", "dog"]
    tokenizer = transformers.BertTokenizerFast(vocab={w: i for i, w in enumerate(words)})
    config = transformers.BlipConfig(
        text_config={"vocab_size": len(words), "hidden_size": 16, "num_hidden_layers": 1,
                     "num_attention_heads": 2, "intermediate_size": 32,
                     "encoder_hidden_size": 16, "max_position_embeddings": 64,
                     "bos_token_id": 2, "sep_token_id": 3, "pad_token_id": 0},
        vision_config={"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1,
                       "num_attention_heads": 2, "image_size": 32, "patch_size": 16},
        projection_dim=16)
    torch.manual_seed(0)
    model = transformers.BlipForConditionalGeneration(config)
    with torch.no_grad():
        model.text_decoder.cls.predictions.bias[words.index("river")] = 50.0
    model.save_pretrained(folder)
    transformers.BlipProcessor(
        image_processor=transformers.BlipImageProcessor(size={"height": 32, "width": 32}),
        tokenizer=tokenizer).save_pretrained(folder)
    return folder


def test_a_configured_captioning_model_captions_each_photo(mem: Memory, folder: Path,
                                                           tiny_captioner: Path) -> None:
    mem.ingest("photos", folder, user_id="ada", caption_model=str(tiny_captioner))
    porto = photos(mem)["2024/porto/IMG_0001.jpg"]
    assert porto.metadata["caption"].split()[0] == "river"
    assert porto.content.endswith(f"camera Apple iPhone 12: {porto.metadata['caption']}.")
