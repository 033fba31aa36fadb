"""Train the tutorial's iris classifier and write its artefact and test data.

    python train.py [MODEL_FOLDER]      # default: the model/ folder next to this script

Writes MODEL_FOLDER/iris.joblib (the fitted pipeline) and MODEL_FOLDER/test_data.json (held-out
flowers with the class and probabilities the trained model gives them: what `catwalk
test-model` expects predict to return).
"""

import json
import sys
from pathlib import Path

import joblib
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

# The names model.yml uses for the four measurements, in the data set's column order.
FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
SEED = 0


def main(folder: Path) -> None:
    iris = load_iris()
    X_train, X_test, y_train, y_test = train_test_split(
        iris.data, iris.target, test_size=0.2, random_state=SEED, stratify=iris.target
    )
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, random_state=SEED))
    model.fit(X_train, y_train)
    print(f"accuracy on {len(X_test)} held-out flowers: {model.score(X_test, y_test):.3f}")

    classes = [str(name) for name in iris.target_names]
    folder.mkdir(parents=True, exist_ok=True)
    joblib.dump({"model": model, "features": FEATURES, "classes": classes}, folder / "iris.joblib")

    # Expected outputs are the trained model's own answers (not the true labels): test-model
    # checks that the served code reproduces the model, not how good the model is.
    rows = []
    for x in X_test:
        # Row by row, exactly as model.py's predict sees them, so the floats match bit for bit.
        proba = model.predict_proba(x.reshape(1, -1))[0]
        rows.append(
            {
                "X": {name: float(value) for name, value in zip(FEATURES, x, strict=True)},
                "y": {
                    "species": classes[int(proba.argmax())],
                    "probabilities": {c: float(p) for c, p in zip(classes, proba, strict=True)},
                },
            }
        )
    (folder / "test_data.json").write_text(json.dumps(rows, indent=2) + "\n")
    print(
        f"wrote {folder / 'iris.joblib'} and {len(rows)} test rows to {folder / 'test_data.json'}"
    )


if __name__ == "__main__":
    here = Path(__file__).resolve().parent
    main(Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else here / "model")
