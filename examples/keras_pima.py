"""The tutorial's Keras program, run by fastmlp.

It is the tutorial's code line for line; only the two imports name fastmlp, and the
data file comes from the command line:

    python examples/keras_pima.py path/to/pima-indians-diabetes.csv

Without a path it runs on a real data set that ships inside scikit-learn: the
Wisconsin breast-cancer data (569 rows, 30 features, 0/1 label), with input_dim
taken from the data's width.
"""
import argparse

from fastmlp.models import Sequential
from fastmlp.layers import Dense
import numpy

parser = argparse.ArgumentParser(description="The tutorial's PIMA program on fastmlp.")
parser.add_argument("csv", nargs="?", help="CSV file: features then a 0/1 label, no header "
                    "(default: scikit-learn's bundled breast-cancer data)")
args = parser.parse_args()

seed = 7
numpy.random.seed(seed)
if args.csv:
    dataset = numpy.loadtxt(args.csv, delimiter=",")
    print("data: %s" % args.csv)
else:
    from sklearn.datasets import load_breast_cancer
    cancer = load_breast_cancer()
    dataset = numpy.column_stack([cancer.data, cancer.target])
    print("data: no CSV given, using scikit-learn's bundled breast-cancer data "
          "(%d rows, %d features)" % (dataset.shape[0], dataset.shape[1] - 1))
n_features = dataset.shape[1] - 1
X = dataset[:, 0:n_features]
Y = dataset[:, n_features]
model = Sequential()
model.add(Dense(16, input_dim=n_features, init='uniform', activation='relu'))
model.add(Dense(8, init='uniform', activation='relu'))
model.add(Dense(1, init='uniform', activation='sigmoid'))
model.compile(loss='binary_crossentropy', optimizer='adam', metrics=['accuracy'])
model.fit(X, Y, nb_epoch=150, batch_size=10)
scores = model.evaluate(X, Y)
print("%s: %.2f%%" % (model.metrics_names[1], scores[1] * 100))
