"""TorchFeatureExtractor, and erasing through a pipeline that starts with it."""

import pickle
import subprocess
import sys

import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.base import clone
from sklearn.pipeline import make_pipeline
from sklearn.utils import get_tags

torch = pytest.importorskip("torch")

from sklearn_ssse import UnlearnableLogisticRegression, forget  # noqa: E402
from sklearn_ssse.torch import TorchFeatureExtractor  # noqa: E402

torch.set_num_threads(1)


def small_cnn(seed=0):
    torch.manual_seed(seed)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1),
        torch.nn.BatchNorm2d(4),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(16, 6),
        torch.nn.Dropout(0.5),
    )
    net.train()
    with torch.no_grad():  # non-trivial running statistics
        net(torch.randn(32, 1, 6, 6) + 1.0)
    return net


def images(n=40, seed=0):
    return np.random.default_rng(seed).normal(size=(n, 1, 6, 6)).astype(np.float32)


def test_transform_shapes_eval_mode_and_flags_restored():
    net = small_cnn()
    X = images()
    ext = TorchFeatureExtractor(net, batch_size=7)
    Z = ext.fit_transform(X)
    assert Z.shape == (40, 6) and Z.dtype == np.float32
    net.eval()
    with torch.no_grad():
        expected = net(torch.from_numpy(X)).numpy()
    net.train()
    assert_allclose(Z, expected, rtol=1e-5, atol=1e-6)  # dropout off, running statistics
    TorchFeatureExtractor(net).transform(X)
    assert all(m.training for m in net.modules())  # the module's flags are restored
    assert ext.get_feature_names_out()[0] == "torchfeatureextractor0"
    assert len(ext.get_feature_names_out()) == 6


def test_intermediate_layer_float64_and_tensor_input():
    net = small_cnn()
    ext = TorchFeatureExtractor(net, layer="4", dtype="float64", progress=True)
    Z = ext.fit_transform(torch.from_numpy(images(5)))
    assert Z.shape == (5, 16) and Z.dtype == np.float64
    assert net[0].weight.dtype == torch.float32  # the user's module is not converted
    with pytest.raises(ValueError, match="no layer"):
        TorchFeatureExtractor(net, layer="missing").fit(images(3))


def test_pickle_clone_and_tags():
    net = small_cnn()
    X = images(9)
    ext = TorchFeatureExtractor(net).fit(X)
    restored = pickle.loads(pickle.dumps(ext))
    assert_allclose(restored.transform(X), ext.transform(X))
    assert restored.module is not net
    assert_allclose(clone(ext).transform(X), ext.transform(X))
    assert get_tags(ext).requires_fit is False


def test_features_do_not_depend_on_the_batch_they_are_computed_in():
    # Removal requests are checked against exact fingerprints of the training features,
    # so a sample must get bit-identical features alone or with the whole training set.
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 8, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Linear(8 * 12 * 12, 16),
    )
    X = np.random.default_rng(0).normal(size=(300, 1, 12, 12))
    ext = TorchFeatureExtractor(net, batch_size=128, dtype="float64").fit(X)
    full = ext.transform(X)
    rows = np.sort(np.random.default_rng(1).choice(300, 37, replace=False))
    assert np.array_equal(ext.transform(X[rows]), full[rows])
    assert np.array_equal(ext.transform(X[rows[:1]]), full[rows[:1]])


def test_progress_bar(capsys):
    net, X = small_cnn(), images(10)
    TorchFeatureExtractor(net, batch_size=3, progress=True).fit_transform(X)
    err = capsys.readouterr().err
    assert "4/4 batches" in err and err.endswith("\n")
    TorchFeatureExtractor(net, batch_size=3, progress=False).fit_transform(X)
    assert capsys.readouterr().err == ""
    with pytest.raises(ValueError, match="progress"):
        TorchFeatureExtractor(net, progress="yes").fit(X)


def test_set_output_pandas():
    pd = pytest.importorskip("pandas")
    net, X = small_cnn(), images(9)
    frame = TorchFeatureExtractor(net).set_output(transform="pandas").fit_transform(X)
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.columns)[:2] == ["torchfeatureextractor0", "torchfeatureextractor1"]


def test_forget_through_feature_pipeline_matches_manual_multilabel():
    net = small_cnn()
    X = images(80, seed=3)
    ext = TorchFeatureExtractor(net, dtype="float64")
    F = ext.fit_transform(X)
    rng = np.random.default_rng(0)
    Y = (F @ rng.normal(size=(6, 3)) + 0.3 * rng.normal(size=(80, 3)) > 0).astype(int)
    params = dict(C=1.0, curvature="empirical_fisher", leave_out=False, damping=1e-4)
    pipe = make_pipeline(
        TorchFeatureExtractor(net, dtype="float64"), UnlearnableLogisticRegression(**params)
    ).fit(X, Y)
    manual = UnlearnableLogisticRegression(**params).fit(F, Y)
    forget(pipe, X[:9], Y[:9], eps=2.0)
    manual.forget(F[:9], Y[:9], eps=2.0)
    assert_allclose(pipe[-1].coef_, manual.coef_, rtol=1e-10, atol=1e-12)
    assert_allclose(pipe[-1].intercept_, manual.intercept_, rtol=1e-10, atol=1e-12)


def test_import_error_names_the_torch_extra():
    # A finder that hides torch, as on a machine without it (sys.modules['torch'] = None
    # would also break scipy's array-API checks, which look torch up in sys.modules).
    code = (
        "import sys\n"
        "class Hide:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'torch' or name.startswith('torch.'):\n"
        "            raise ModuleNotFoundError(name)\n"
        "sys.meta_path.insert(0, Hide())\n"
        "import sklearn_ssse\n"
        "sklearn_ssse.forget\n"
        "try:\n"
        "    import sklearn_ssse.torch\n"
        "except ImportError as e:\n"
        "    print(e)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert "sklearn-ssse[torch]" in out
