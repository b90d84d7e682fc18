import pytest
import torch

from pgcnn_triton.data import DatasetNotFoundError, load_dataset
from tests.data.formats import write_pcam

h5py = pytest.importorskip("h5py")


def test_pcam_hdf5(tmp_path):
    arrays = write_pcam(tmp_path)
    data = load_dataset("pcam", tmp_path)
    assert data.sizes() == {"train": 6, "val": 3, "test": 4}
    x, y = data.val[1]
    assert x.shape == (3, 96, 96) and y == int(arrays["valid"][1][1].reshape(-1)[0])
    raw = torch.from_numpy(arrays["valid"][0][1]).permute(2, 0, 1).float() / 255
    assert torch.allclose(x * data.val.std + data.val.mean, raw, atol=1e-6)


def test_pcam_missing(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="camelyonpatch_level_2_split_train_x.h5"):
        load_dataset("pcam", tmp_path)
