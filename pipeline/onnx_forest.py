"""Convert the registered model's forest to ONNX, so sensors can run it with onnxruntime.

Only the classifier is converted: the sensor does the preprocessing (select by name, ±inf -> NaN,
NaN -> training median) itself in numpy, exactly as the skops model's first steps do, and hands
the forest a float32 matrix in the model's feature order.  ``zipmap`` is off, so the graph returns
plain ``label`` and ``probabilities`` tensors (columns in ``classifier.classes_`` order).
"""

from __future__ import annotations

from typing import Any

#: Where the converted forest sits inside the logged model's folder (MLflow's ``extra_files``).
ONNX_FILE = "forest.onnx"
#: Model-version tag naming the ONNX forest's path inside the model folder (the sensor reads it).
ONNX_TAG = "onnx_forest"


def forest_to_onnx(classifier: Any, n_features: int) -> bytes:
    """The serialised ONNX graph of a fitted tree ensemble taking ``n_features`` float32 columns."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    onx = convert_sklearn(
        classifier,
        initial_types=[("input", FloatTensorType([None, int(n_features)]))],
        options={id(classifier): {"zipmap": False}},
        # opsets onnxruntime >= 1.16 runs (TreeEnsembleClassifier of ai.onnx.ml 3)
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    return onx.SerializeToString()
