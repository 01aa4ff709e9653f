"""B5 anchor: scikit-learn LogisticRegression(lbfgs) on the matrix funnel-bench exported.

usage: python3 b5_sklearn.py X.npy y.npy TRAIN_ROWS ALPHA
Prints one JSON line: fit seconds, held-out ROC AUC, iterations, versions.
linfa minimizes sum(log loss) + alpha/2 ||w||^2 (intercept not penalized),
which is scikit-learn's objective with C = 1 / alpha.
"""

import json
import sys
import time

import numpy as np
import sklearn
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score


def main() -> None:
    x_path, y_path, train_rows, alpha = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    x = np.load(x_path)
    y = np.load(y_path)
    x_train, y_train = x[:train_rows], y[:train_rows]
    x_test, y_test = x[train_rows:], y[train_rows:]
    model = LogisticRegression(solver="lbfgs", C=1.0 / alpha, max_iter=1000)
    started = time.perf_counter()
    model.fit(x_train, y_train)
    seconds = time.perf_counter() - started
    auc = roc_auc_score(y_test, model.predict_proba(x_test)[:, 1]) if len(x_test) else float("nan")
    print(json.dumps({
        "seconds": seconds,
        "auc": auc,
        "iterations": int(model.n_iter_[0]),
        "sklearn": sklearn.__version__,
        "numpy": np.__version__,
    }))


if __name__ == "__main__":
    main()
