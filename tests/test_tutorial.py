"""The tutorial, piece by piece: the hand-computed forward passes (9, 13, 44)
and the Keras-1 PIMA program with only its imports changed."""

import numpy as np
import pytest


def forward_model(hidden_kernel, output_kernel, hidden_activation=None):
    from fastmlp.layers import Dense
    from fastmlp.models import Sequential
    model = Sequential()
    model.add(Dense(2, input_dim=2, use_bias=False, activation=hidden_activation))
    model.add(Dense(1, use_bias=False))
    # kernel (n_in, n_out): column j holds node j's weights
    model.set_weights([np.array(hidden_kernel, dtype=float).T,
                       np.array(output_kernel, dtype=float).reshape(2, 1)])
    return model


def test_forward_9_and_13():
    # node_0 = [1, 1], node_1 = [-1, 1], output [2, -1], no biases, no activation
    # (2, 3): hidden (2+3, -2+3) = (5, 1); output 5*2 + 1*(-1) = 9
    # (3, 4): hidden (3+4, -3+4) = (7, 1); output 7*2 + 1*(-1) = 13
    model = forward_model([[1, 1], [-1, 1]], [2, -1])
    out = model.predict(np.array([[2, 3], [3, 4]]), verbose=0)
    assert out.shape == (2, 1)
    np.testing.assert_array_equal(out[:, 0], [9.0, 13.0])
    # the hidden values, from the first layer alone
    from fastmlp.models import Sequential
    from fastmlp.layers import Dense
    hidden = Sequential([Dense(2, input_dim=2, use_bias=False)])
    hidden.set_weights([model.get_weights()[0]])
    np.testing.assert_array_equal(hidden.predict(np.array([[2, 3], [3, 4]]), verbose=0),
                                  [[5, 1], [7, 1]])


def test_forward_44_with_relu():
    # node_0 = [2, 4], node_1 = [4, -5], output [2, 7], ReLU on the hidden layer
    # (3, 4): node_0 = 3*2 + 4*4 = 22 -> 22;  node_1 = 3*4 + 4*(-5) = -8 -> 0
    # output 22*2 + 0*7 = 44
    model = forward_model([[2, 4], [4, -5]], [2, 7], hidden_activation="relu")
    out = model.predict(np.array([[3, 4]]), verbose=0)
    np.testing.assert_array_equal(out, [[44.0]])
    # without the ReLU the negative node would count: 22*2 + (-8)*7 = -12
    linear = forward_model([[2, 4], [4, -5]], [2, 7])
    np.testing.assert_array_equal(linear.predict(np.array([[3, 4]]), verbose=0), [[-12.0]])


def test_forward_44_float64_and_mlp():
    from fastmlp.layers import Dense
    from fastmlp.models import Sequential
    model = Sequential([Dense(2, input_dim=2, use_bias=False, activation="relu"),
                        Dense(1, use_bias=False)], dtype="float64")
    model.set_weights([np.array([[2.0, 4.0], [4.0, -5.0]]), np.array([[2.0], [7.0]])])
    out = model.predict([[3, 4]], verbose=0)
    assert out.dtype == np.float64
    assert out[0, 0] == 44.0


def test_sse_gradient_descent_step():
    # Piece 3: the SSE cost and one gradient-descent step on the 9-network.
    # target 10: error 9 - 10 = -1, cost 1. Gradients (see test_optimizers):
    #   output kernel: h * 2(y - t) = (5, 1) * -2 = (-10, -2)
    # SGD lr = 1/16: output kernel (2 + 10/16, -1 + 2/16) = (2.625, -0.875)
    from fastmlp.optimizers import SGD
    model = forward_model([[1, 1], [-1, 1]], [2, -1])
    model.compile(optimizer=SGD(learning_rate=1 / 16), loss="sum_squared_error")
    loss = model.train_on_batch(np.array([[2.0, 3.0]]), np.array([10.0]))
    loss = loss[0] if isinstance(loss, (list, tuple)) else loss
    assert loss == 1.0
    w1, w2 = model.get_weights()
    np.testing.assert_array_equal(w2[:, 0], [2.625, -0.875])
    np.testing.assert_array_equal(w1, [[1.5, -1.25], [1.75, 0.625]])
    assert model.predict(np.array([[2.0, 3.0]]), verbose=0)[0, 0] == 22.203125


@pytest.mark.pima
def test_pima_keras1_program(pima):
    # The tutorial's program verbatim but for the imports (Keras-1 names
    # init= and nb_epoch= included); it reached 77.73% in Keras 1.
    from fastmlp.models import Sequential
    from fastmlp.layers import Dense
    import numpy
    seed = 7
    numpy.random.seed(seed)
    X, Y = pima
    model = Sequential()
    model.add(Dense(16, input_dim=8, init='uniform', activation='relu'))
    model.add(Dense(8, init='uniform', activation='relu'))
    model.add(Dense(1, init='uniform', activation='sigmoid'))
    model.compile(loss='binary_crossentropy', optimizer='adam', metrics=['accuracy'])
    history = model.fit(X, Y, nb_epoch=150, batch_size=10, verbose=0)
    scores = model.evaluate(X, Y, verbose=0)
    assert model.metrics_names == ["loss", "accuracy"]
    assert len(history.history["loss"]) == 150
    assert history.history["loss"][-1] < history.history["loss"][0]
    print("%s: %.2f%%" % (model.metrics_names[1], scores[1] * 100))
    assert scores[1] >= 0.75, scores
    # evaluate's accuracy is the fraction of thresholded predictions that match
    pred = model.predict(X, verbose=0)[:, 0]
    np.testing.assert_allclose(scores[1], np.mean((pred > 0.5) == (Y > 0.5)), atol=1e-12)
