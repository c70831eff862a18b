import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

from dsgdn_pyg.metrics import classification_metrics, format_confusion, weighted_f1


def sklearn_weighted_f1(pred, target, mask=None):
    pred, target = np.asarray(pred), np.asarray(target)
    valid = target >= 0
    if mask is not None:
        valid &= np.asarray(mask, dtype=bool)
    if not valid.any():
        return 0.0
    return f1_score(target[valid], pred[valid], average='weighted', zero_division=0)


def random_case(rng, num_classes):
    n = int(rng.integers(1, 60))
    kind = rng.integers(0, 4)
    if kind == 0:  # balanced
        target = rng.integers(0, num_classes, n)
    elif kind == 1:  # imbalanced
        p = rng.dirichlet(np.full(num_classes, 0.3))
        target = rng.choice(num_classes, n, p=p)
    elif kind == 2:  # missing classes: only the first half
        target = rng.integers(0, max(1, num_classes // 2), n)
    else:  # all one class
        target = np.full(n, rng.integers(0, num_classes))
    target = np.where(rng.random(n) < 0.15, -1, target)  # unlabelled entries
    # Predictions: partly correct, partly random, sometimes a single constant class.
    if rng.random() < 0.2:
        pred = np.full(n, rng.integers(0, num_classes))
    else:
        pred = np.where(rng.random(n) < 0.5, np.maximum(target, 0), rng.integers(0, num_classes, n))
    mask = rng.random(n) < 0.8
    return pred, target, mask


@pytest.mark.parametrize('dtype', [torch.float64, torch.float32])
def test_weighted_f1_matches_sklearn(dtype):
    rng = np.random.default_rng(0)
    tol = 1e-12 if dtype == torch.float64 else 1e-6
    for _ in range(300):
        num_classes = int(rng.integers(1, 8))
        pred, target, mask = random_case(rng, num_classes)
        out = weighted_f1(torch.from_numpy(pred), torch.from_numpy(target), num_classes,
                          dtype=dtype)
        assert out.dim() == 0 and out.dtype == dtype
        assert abs(out.item() - sklearn_weighted_f1(pred, target)) < tol

        out = weighted_f1(torch.from_numpy(pred), torch.from_numpy(target), num_classes,
                          mask=torch.from_numpy(mask), dtype=dtype)
        assert abs(out.item() - sklearn_weighted_f1(pred, target, mask)) < tol


def test_weighted_f1_default_dtype():
    out = weighted_f1(torch.tensor([0, 1]), torch.tensor([0, 0]), 2)
    assert out.dtype == torch.get_default_dtype()
    assert abs(out.item() - f1_score([0, 0], [0, 1], average='weighted')) < 1e-6


def test_weighted_f1_batched_over_modalities():
    rng = np.random.default_rng(1)
    num_classes, n = 6, 40
    target = rng.integers(-1, num_classes, n)
    preds = rng.integers(0, num_classes, (3, n))
    mask = rng.random(n) < 0.7
    out = weighted_f1(torch.from_numpy(preds), torch.from_numpy(target), num_classes,
                      mask=torch.from_numpy(mask), dtype=torch.float64)
    assert out.shape == (3, )
    for m in range(3):
        assert abs(out[m].item() - sklearn_weighted_f1(preds[m], target, mask)) < 1e-12


def test_weighted_f1_nothing_valid_is_zero():
    out = weighted_f1(torch.tensor([0, 1, 2]), torch.tensor([-1, -1, -1]), 3)
    assert out.item() == 0.0
    out = weighted_f1(torch.tensor([0, 1]), torch.tensor([0, 1]), 3,
                      mask=torch.tensor([False, False]))
    assert out.item() == 0.0


def test_weighted_f1_hand_computed():
    # target 0 0 1 1 1, pred 0 1 1 1 0 -> class 0: TP 1, FP 1, FN 1 -> F1 1/2;
    # class 1: TP 2, FP 1, FN 1 -> F1 2/3; weighted (2*1/2 + 3*2/3)/5 = 3/5.
    out = weighted_f1(torch.tensor([0, 1, 1, 1, 0]), torch.tensor([0, 0, 1, 1, 1]), 2,
                      dtype=torch.float64)
    assert abs(out.item() - 0.6) < 1e-12


def test_weighted_f1_bad_input():
    with pytest.raises(ValueError, match='num_classes'):
        weighted_f1(torch.tensor([0]), torch.tensor([0]), 0)
    with pytest.raises(ValueError, match='target'):
        weighted_f1(torch.tensor([0, 1]), torch.tensor([0]), 2)
    with pytest.raises(ValueError, match='integer'):
        weighted_f1(torch.tensor([0.5]), torch.tensor([0]), 2)
    with pytest.raises(ValueError, match='mask'):
        weighted_f1(torch.tensor([0, 1]), torch.tensor([0, 1]), 2, mask=torch.tensor([True]))


def test_classification_metrics_matches_sklearn():
    rng = np.random.default_rng(2)
    names = ['hap', 'sad', 'neu', 'ang', 'exc', 'fru']
    y_true = rng.choice(6, 200, p=[0.05, 0.15, 0.3, 0.2, 0.3, 0.0])  # class 5 never true
    y_true[rng.random(200) < 0.1] = -1
    y_pred = rng.integers(0, 5, 200)  # class 5 never predicted either
    out = classification_metrics(torch.from_numpy(y_true), y_pred, names)

    valid = y_true >= 0
    t, p = y_true[valid], y_pred[valid]
    assert out['num_utterances'] == int(valid.sum())
    assert abs(out['wa_f1'] - 100 * f1_score(t, p, average='weighted')) < 1e-9
    assert abs(out['wa_acc'] - 100 * accuracy_score(t, p)) < 1e-9
    per_class = f1_score(t, p, labels=range(6), average=None, zero_division=0)
    assert list(out['per_class_f1']) == names
    for c, name in enumerate(names):
        assert abs(out['per_class_f1'][name] - 100 * per_class[c]) < 1e-9
        assert out['support'][name] == int((t == c).sum())
    assert out['confusion'] == confusion_matrix(t, p, labels=range(6)).tolist()
    assert len(out['confusion']) == 6 and all(len(row) == 6 for row in out['confusion'])
    assert out['confusion'][5] == [0] * 6
    # Rows are true labels: row sums are the supports.
    assert [sum(row) for row in out['confusion']] == [out['support'][n] for n in names]


def test_classification_metrics_empty_and_bad_input():
    out = classification_metrics([-1, -1], [0, 1], ['a', 'b'])
    assert out['num_utterances'] == 0 and out['wa_f1'] == 0 and out['wa_acc'] == 0
    assert out['confusion'] == [[0, 0], [0, 0]]
    with pytest.raises(ValueError, match='y_pred'):
        classification_metrics([0, 1], [0], ['a', 'b'])
    with pytest.raises(ValueError, match='label names'):
        classification_metrics([0, 2], [0, 1], ['a', 'b'])


def test_format_confusion():
    names = ['neutral', 'joy', 'x']
    text = format_confusion([[12, 0, 3], [1, 1005, 0], [0, 0, 7]], names)
    lines = text.splitlines()
    assert len(lines) == 2 + len(names)
    assert len({len(line) for line in lines}) == 1  # fixed width
    for name, line, row in zip(names, lines[2:], [[12, 0, 3], [1, 1005, 0], [0, 0, 7]]):
        assert line.startswith(name)
        assert [int(v) for v in line.split('|')[1].split()] == row
    assert lines[0].split('|')[1].split() == names
    with pytest.raises(ValueError, match='confusion'):
        format_confusion([[1, 2]], names)
