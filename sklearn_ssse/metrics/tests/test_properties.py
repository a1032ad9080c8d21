"""Property-based tests of the similarity ratio and the parameter distance."""

from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.metrics import roc_auc_score

from sklearn_ssse.metrics import parameter_distance, similarity_ratio
from sklearn_ssse.metrics._similarity import _per_label_auc

from ._helpers import binary_problem, blend, multiclass_problem, multilabel_problem

PROBLEMS = {
    "binary": binary_problem,
    "multiclass": multiclass_problem,
    "multilabel": multilabel_problem,
}

erased_models = st.fixed_dictionaries(
    {
        "problem": st.sampled_from(sorted(PROBLEMS)),
        "t": st.floats(-1.0, 2.0),
        "noise": st.sampled_from([0.0, 0.01, 0.1, 1.0]),
        "seed": st.integers(0, 2**16),
    }
)


def _draw(case):
    p = PROBLEMS[case["problem"]]()
    erased = blend(p.original, p.retrained, case["t"], noise=case["noise"], seed=case["seed"])
    return p, erased


@settings(max_examples=60, deadline=None)
@given(case=erased_models)
def test_similarity_ratio_in_unit_interval(case):
    p, erased = _draw(case)
    gamma = similarity_ratio(p.original, erased, p.retrained, p.X_removed, p.Y_removed)
    assert 0.0 <= gamma <= 1.0


@settings(max_examples=60, deadline=None)
@given(case=erased_models)
def test_swapping_references_gives_complement(case):
    p, erased = _draw(case)
    gamma, details = similarity_ratio(
        p.original, erased, p.retrained, p.X_removed, p.Y_removed, return_details=True
    )
    swapped = similarity_ratio(p.retrained, erased, p.original, p.X_removed, p.Y_removed)
    assume(not details["degenerate"])
    assert swapped == pytest.approx(1.0 - gamma, abs=1e-12)


parameters = arrays(np.float64, (3, 4), elements=st.floats(-1e3, 1e3, width=64))
intercepts = arrays(np.float64, (3,), elements=st.floats(-1e3, 1e3, width=64))


def _model(coef, intercept):
    return SimpleNamespace(coef_=coef, intercept_=intercept)


@settings(max_examples=100, deadline=None)
@given(
    coefs=st.tuples(parameters, parameters, parameters),
    icpts=st.tuples(intercepts, intercepts, intercepts),
    scale=st.floats(1e-3, 1e3),
)
def test_parameter_distance_properties(coefs, icpts, scale):
    erased, original, retrained = (_model(c, i) for c, i in zip(coefs, icpts, strict=True))
    gap = np.linalg.norm(np.r_[(coefs[1] - coefs[2]).ravel(), icpts[1] - icpts[2]])
    assume(gap > 1e-3)

    assert parameter_distance(retrained, original, retrained) == 0.0
    assert parameter_distance(original, original, retrained) == pytest.approx(1.0, rel=1e-12)

    distance = parameter_distance(erased, original, retrained)
    assert distance >= 0.0
    scaled = (_model(scale * c, scale * i) for c, i in zip(coefs, icpts, strict=True))
    assert parameter_distance(*scaled) == pytest.approx(distance, rel=1e-9, abs=1e-12)


@settings(max_examples=150, deadline=None)
@given(
    data=st.data(),
    n_samples=st.integers(2, 40),
    n_labels=st.integers(1, 5),
    n_paths=st.integers(1, 3),
    levels=st.integers(1, 6),
)
def test_vectorized_auc_equals_roc_auc_score(data, n_samples, n_labels, n_paths, levels):
    """The rank-based AUC of every column equals scikit-learn's roc_auc_score, ties included
    (few distinct score levels force many ties), and invalid columns are 0."""
    seed = data.draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    indicator = rng.random((n_samples, n_labels)) < rng.random(n_labels)
    scores = rng.integers(0, levels, size=(n_samples, n_labels, n_paths)).astype(float)
    n_positive = indicator.sum(axis=0)
    valid = (n_positive > 0) & (n_positive < n_samples)
    auc = _per_label_auc(indicator, scores, valid)
    for j in range(n_labels):
        for p in range(n_paths):
            expected = roc_auc_score(indicator[:, j], scores[:, j, p]) if valid[j] else 0.0
            assert auc[j, p] == pytest.approx(expected, rel=1e-12, abs=1e-12)
    assert np.array_equal(_per_label_auc(indicator, scores[:, :, 0], valid), auc[:, 0])
