"""
Sparse text classification
==========================

A synthetic corpus stands in for newsgroup posts: four topics, each with its
own frequent words on top of a shared Zipf-distributed background
vocabulary. ``TfidfVectorizer`` turns it into a sparse CSR matrix, which
skgd's estimators take as it is (no copy, no densifying).
``SGDLogisticClassifier`` fits one multinomial model (on data this wide its
default solver is Newton by conjugate gradients: the exact optimum in a few
steps), ``HingeSVM`` the one-vs-rest SVMs jointly (the hinge has no second
derivative: averaged Adam epochs); scikit-learn's ``SGDClassifier`` is
shown for comparison.
"""

import time

import matplotlib.pyplot as plt
import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import SGDClassifier
from sklearn.model_selection import train_test_split

from skgd import HingeSVM, SGDLogisticClassifier
from skgd.plotting import plot_loss_curves

rng = np.random.default_rng(0)
n_docs, n_topics, vocabulary, words_per_doc = 4000, 4, 3000, 40
background = 1.0 / np.arange(1, vocabulary + 1)  # Zipf's law
background /= background.sum()
topic_words = rng.choice(vocabulary, size=(n_topics, 60), replace=False)


def document(topic):
    """A bag of words: 5% from the topic's words, the rest background."""
    from_topic = rng.random(words_per_doc) < 0.05
    words = rng.choice(vocabulary, size=words_per_doc, p=background)
    words[from_topic] = rng.choice(topic_words[topic], size=from_topic.sum())
    return " ".join(f"w{w}" for w in words)


topics = rng.integers(n_topics, size=n_docs)
corpus = [document(topic) for topic in topics]
X = TfidfVectorizer().fit_transform(corpus)
X_train, X_test, y_train, y_test = train_test_split(
    X, topics, test_size=0.25, random_state=0
)
density = X.nnz / np.prod(X.shape)
print(f"X: {X.shape[0]} x {X.shape[1]} CSR, {100 * density:.2f}% non-zero")

# %%
# Fit and score.
models = {
    "skgd SGDLogisticClassifier": SGDLogisticClassifier(alpha=1e-4, random_state=0),
    "skgd HingeSVM": HingeSVM(alpha=1e-4, random_state=0),
    "sklearn SGDClassifier (hinge, OvR)": SGDClassifier(alpha=1e-4, random_state=0),
}
for label, model in models.items():
    start = time.perf_counter()
    model.fit(X_train, y_train)
    seconds = time.perf_counter() - start
    accuracy = model.score(X_test, y_test)
    print(f"{label:>36}: {seconds:.2f} s, test accuracy {accuracy:.3f}")

# %%
# skgd records the objective of every epoch (of every Newton step).
skgd_models = [models["skgd SGDLogisticClassifier"], models["skgd HingeSVM"]]
ax = plot_loss_curves(skgd_models)
ax.set_title("Objective per epoch / Newton step on sparse tf-idf features")
plt.show()
