"""Every public estimator of the package follows the scikit-learn contract: it is a `BaseEstimator`,
`clone` and get_params/set_params round-trip its hyperparameters, `__init__` stores them and
nothing else, and using it before `fit` raises our NotFittedError, which is also scikit-learn's."""
import importlib
import inspect
import pkgutil

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, clone
from sklearn.exceptions import NotFittedError as SklearnNotFittedError
from sklearn.utils.estimator_checks import (check_get_params_invariance,
                                            check_no_attributes_set_in_init,
                                            check_parameters_default_constructible,
                                            check_set_params)

import retail_workbench
from retail_workbench.core import NotFittedError

PAIRS = pd.DataFrame({"query": ["tea"], "item_id": [1]})
SUMMARY = pd.DataFrame({"frequency": [1.0], "recency": [1.0], "T": [2.0], "monetary_value": [5.0]})

# every estimator the package must have, and how to use one (which must fail before fit)
USE_BEFORE_FIT = {
    "PopularityRecommender": lambda model: model.recommend([1]),
    "ItemKNNRecommender": lambda model: model.similar_items([1]),
    "RandomRecommender": lambda model: model.recommend([1]),
    "LightFMRecommender": lambda model: model.recommend([1], k=5),
    "BasketRecommender": lambda model: model.recommend([1]),
    "NeuMFRecommender": lambda model: model.recommend([1], k=5),
    "SeasonalNaive": lambda model: model.predict(horizon=3),
    "MovingAverage": lambda model: model.predict(horizon=3),
    "DemandForecaster": lambda model: model.predict(horizon=3),
    "GlobalForecaster": lambda model: model.predict(horizon=3),
    "EnsembleForecaster": lambda model: model.predict(horizon=3),
    "CustomerSegmenter": lambda model: model.predict(pd.DataFrame({"frequency": [1.0]})),
    "BM25Index": lambda model: model.scores("tea"),
    "SearchFeaturizer": lambda model: model.transform(PAIRS),
    "SearchRanker": lambda model: model.rank("tea", [1]),
    "ProductIndex": lambda model: model.search("tea"),
    "TwoStageRecommender": lambda model: model.recommend([1]),
    "CustomerStateModel": lambda model: model.transmat_,
    "BetaGeoModel": lambda model: model.p_alive(SUMMARY),
    "GammaGammaModel": lambda model: model.expected_spend(SUMMARY),
    "CLVModel": lambda model: model.predict(SUMMARY),
}


def _package_classes():
    "Public classes defined in retail_workbench's modules, by name."
    classes = {}
    for info in pkgutil.walk_packages(retail_workbench.__path__, "retail_workbench."):
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            defined_here = inspect.isclass(obj) and obj.__module__ == module.__name__
            if defined_here and not name.startswith("_"):
                classes[name] = obj
    return classes


CLASSES = _package_classes()
# public base classes that estimators inherit from, not estimators themselves
BASES = {"BaseRecommender"}
ESTIMATORS = {name: cls for name, cls in CLASSES.items()
              if issubclass(cls, BaseEstimator) and name not in BASES}


def test_every_listed_estimator_is_found():
    assert sorted(ESTIMATORS) == sorted(USE_BEFORE_FIT)


def test_every_class_with_fit_is_an_estimator():
    fitting = {name for name, cls in CLASSES.items() if callable(getattr(cls, "fit", None))}
    assert sorted(fitting - set(ESTIMATORS)) == []


def test_bases_are_inherited():
    for base in BASES:
        assert any(issubclass(cls, CLASSES[base]) for cls in ESTIMATORS.values()), base


def test_not_fitted_error_is_sklearns():
    assert issubclass(NotFittedError, SklearnNotFittedError)
    assert issubclass(NotFittedError, ValueError)


@pytest.mark.parametrize("name", sorted(USE_BEFORE_FIT))
def test_sklearn_parameter_contract(name):
    estimator = ESTIMATORS[name]()
    check_parameters_default_constructible(name, estimator)
    check_no_attributes_set_in_init(name, estimator)
    check_get_params_invariance(name, estimator)
    check_set_params(name, estimator)


@pytest.mark.parametrize("name", sorted(USE_BEFORE_FIT))
def test_clone_and_params_round_trip(name):
    estimator = ESTIMATORS[name]()
    params = estimator.get_params()
    changed = {key: value + 1 for key, value in params.items()
               if isinstance(value, (int, float)) and not isinstance(value, bool)}
    changed.update({key: 7 for key in ("random_state", "window_days") if key in params})
    assert changed, f"{name} has no numeric hyperparameter to change"
    estimator.set_params(**changed)
    copy = clone(estimator)
    assert copy is not estimator
    assert copy.get_params() == {**params, **changed}
    assert ESTIMATORS[name]().set_params(**copy.get_params()).get_params() == copy.get_params()


@pytest.mark.parametrize("name", sorted(USE_BEFORE_FIT))
def test_use_before_fit_raises_not_fitted(name):
    with pytest.raises(NotFittedError, match=f"This {name} is not fitted yet") as caught:
        USE_BEFORE_FIT[name](ESTIMATORS[name]())
    assert isinstance(caught.value, SklearnNotFittedError)


def test_array_hyperparameters_are_cloned():
    from retail_workbench.search.rank import SearchRanker
    ranker = SearchRanker(position_bias=np.array([1.0, 0.5]))
    copy = clone(ranker)
    np.testing.assert_array_equal(copy.position_bias, ranker.position_bias)
    assert copy.position_bias is not ranker.position_bias
