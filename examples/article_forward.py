"""Pieces 1 and 2 of the tutorial: forward propagation, computed by a fastmlp model.

The tutorial computes a tiny network by hand in NumPy:

* piece 1: inputs (a, b), hidden weights node_0 = [1, 1], node_1 = [-1, 1],
  output weights [2, -1], no biases, no activation.
  (2, 3) -> hidden 5 and 1 -> output 9;  (3, 4) -> hidden 7 and 1 -> output 13.
* piece 2: the same with ReLU on the hidden layer and node_0 = [2, 4],
  node_1 = [4, -5], output [2, 7].  (3, 4) -> hidden 22 and 0 -> output 44.

Here the same weights are put into a ``Sequential`` of two ``Dense(use_bias=False)``
layers with ``set_weights``.  A Dense kernel is stored (n_in, n_out), so node_k's
weights form column k.  The hidden values come from a second ``Sequential`` holding
just the first layer, with the same weights.

    python examples/article_forward.py                 # the tutorial's inputs
    python examples/article_forward.py --inputs 3 4    # your own (repeatable)
"""

import argparse

import numpy as np

from fastmlp.layers import Dense
from fastmlp.models import Sequential


def build(hidden_weights, output_weights, activation):
    """The full network and a model of its hidden layer alone, sharing the weights."""
    # node_0, node_1 -> kernel columns
    hidden_kernel = np.array([hidden_weights["node_0"], hidden_weights["node_1"]], float).T
    output_kernel = np.array(output_weights, float).reshape(-1, 1)

    model = Sequential()
    model.add(Dense(2, input_dim=2, activation=activation, use_bias=False))
    model.add(Dense(1, use_bias=False))
    model.set_weights([hidden_kernel, output_kernel])

    hidden = Sequential()
    hidden.add(Dense(2, input_dim=2, activation=activation, use_bias=False))
    hidden.set_weights([hidden_kernel])
    return model, hidden


def show(title, weights, output_weights, activation, inputs):
    model, hidden = build(weights, output_weights, activation)
    print(title)
    print(f"  weights: node_0 = {weights['node_0']}, node_1 = {weights['node_1']}, "
          f"output = {output_weights}")
    x = np.array(inputs, dtype=float)
    h = hidden.predict(x, verbose=0)
    y = model.predict(x, verbose=0)
    for xi, hi, yi in zip(x, h, y):
        print(f"  input_data = [{xi[0]:g}, {xi[1]:g}]:  node_0_value = {hi[0]:g}, "
              f"node_1_value = {hi[1]:g}  ->  output = {yi[0]:g}")
    print()


def main(argv=None):
    ap = argparse.ArgumentParser(description="The tutorial's forward-propagation examples.")
    ap.add_argument("--inputs", nargs=2, type=float, action="append", metavar=("A", "B"),
                    help="an input pair (a, b); repeat for several "
                         "(default: the tutorial's (2, 3) and (3, 4) for piece 1, "
                         "(3, 4) for piece 2)")
    args = ap.parse_args(argv)
    inputs_1 = args.inputs or [[2, 3], [3, 4]]
    inputs_2 = args.inputs or [[3, 4]]

    show("Piece 1: no activation",
         {"node_0": [1, 1], "node_1": [-1, 1]}, [2, -1], None, inputs_1)
    show("Piece 2: ReLU on the hidden layer",
         {"node_0": [2, 4], "node_1": [4, -5]}, [2, 7], "relu", inputs_2)


if __name__ == "__main__":
    main()
