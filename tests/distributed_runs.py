"""Training runs for `test_distributed.py`, each in a process of its own (the
devices must be set up before the backend starts):

    python tests/distributed_runs.py mirrored      # TensorFlow, 2 logical CPUs
    python tests/distributed_runs.py worker        # one MultiWorkerMirrored worker
                                                   # (TF_CONFIG set), or alone
    python tests/distributed_runs.py data_parallel # JAX, 2 host devices

Each prints one JSON line: the rate and momentum of every update and the
final weights, for the distributed run and, where it fits in the process, a
single-device run of the same global batch.
"""

import json
import os
import sys

MODE = sys.argv[1]
if MODE == "data_parallel":
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
if MODE == "mirrored":
    import tensorflow as tf

    tf.config.set_logical_device_configuration(
        tf.config.list_physical_devices("CPU")[0],
        [tf.config.LogicalDeviceConfiguration()] * 2,
    )

import keras  # noqa: E402
import numpy as np  # noqa: E402

from clr_optimizers import Adam  # noqa: E402

CLR = {"max_lr": 0.05, "step_size_up": 3, "step_size_down": 5, "momentum": [0.85, 0.95]}
# The first layer at half the rate: every replica updates each group at its own.
GROUPS = [{"layers": "body", "factor": 0.5}]
GLOBAL_BATCH, EPOCHS = 8, 2


class Record(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.rates, self.momentums = [], []

    def on_train_batch_end(self, batch, logs=None):
        self.rates.append(self.model.optimizer.current_lr)
        self.momentums.append(self.model.optimizer.current_momentum)


def data():
    rng = np.random.default_rng(0)
    return (
        rng.normal(size=(64, 3)).astype("float32"),
        rng.normal(size=(64, 1)).astype("float32"),
    )


def new_model():
    model = keras.Sequential(
        [
            keras.Input((3,)),
            keras.layers.Dense(2, activation="tanh", name="body"),
            keras.layers.Dense(1),
        ]
    )
    model.set_weights(
        [
            np.full((3, 2), 0.3, "float32"),
            np.zeros(2, "float32"),
            np.full((2, 1), 0.5, "float32"),
            np.zeros(1, "float32"),
        ]
    )
    return model


def fit(scope=None):
    """`model.fit` over the global batch, built in `scope` if given."""
    if scope is None:
        model = new_model()
        model.compile(
            optimizer=Adam(learning_rate=0.01, clr=CLR, groups=GROUPS), loss="mse"
        )
    else:
        with scope:
            model = new_model()
            model.compile(
                optimizer=Adam(learning_rate=0.01, clr=CLR, groups=GROUPS), loss="mse"
            )
    record = Record()
    x, y = data()
    model.fit(
        x,
        y,
        batch_size=GLOBAL_BATCH,
        epochs=EPOCHS,
        shuffle=False,
        verbose=0,
        callbacks=[record],
    )
    return model, {
        "rates": record.rates,
        "momentums": record.momentums,
        "weights": [w.tolist() for w in model.get_weights()],
    }


def mirrored():
    import tensorflow as tf

    _, single = fit()
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    model, distributed = fit(strategy.scope())
    # Every replica's copy of every variable is the same: each replica
    # applied the same update with the same rate and momentum.
    copies = [[c.numpy() for c in v.value.values] for v in model.weights]
    distributed["replicas"] = strategy.num_replicas_in_sync
    distributed["copies_equal"] = all(
        all(np.array_equal(c, cs[0]) for c in cs) for cs in copies
    )
    distributed["copies"] = min(len(cs) for cs in copies)
    return {"single": single, "distributed": distributed}


def worker():
    """A custom training loop (Keras's `fit` does not support this strategy):
    each worker trains on its shard of each global batch."""
    import tensorflow as tf

    distributed = "TF_CONFIG" in os.environ
    if distributed:
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    else:
        strategy = tf.distribute.get_strategy()
    with strategy.scope():
        model = new_model()
        optimizer = Adam(learning_rate=0.01, clr=CLR, groups=GROUPS)
        optimizer.build(model.trainable_variables)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.DATA
    )
    dataset = tf.data.Dataset.from_tensor_slices(data()).batch(GLOBAL_BATCH)
    dataset = strategy.experimental_distribute_dataset(dataset.with_options(options))

    @tf.function
    def step(x, y):
        def on_replica(x, y):
            with tf.GradientTape() as tape:
                error = model(x, training=True) - y
                loss = tf.reduce_sum(error**2) / GLOBAL_BATCH
            variables = model.trainable_variables
            optimizer.apply(tape.gradient(loss, variables), variables)

        strategy.run(on_replica, args=(x, y))

    rates, momentums = [], []
    for _ in range(EPOCHS):
        for x, y in dataset:
            step(x, y)
            rates.append(optimizer.current_lr)
            momentums.append(optimizer.current_momentum)
    return {
        "rates": rates,
        "momentums": momentums,
        "weights": [w.tolist() for w in model.get_weights()],
    }


def data_parallel():
    import jax

    _, single = fit()
    keras.distribution.set_distribution(keras.distribution.DataParallel())
    model, distributed = fit()
    distributed["devices"] = len(jax.devices())
    distributed["kernel_devices"] = len(model.layers[0].kernel.value.devices())
    return {"single": single, "distributed": distributed}


if __name__ == "__main__":
    print(
        json.dumps(
            {"mirrored": mirrored, "worker": worker, "data_parallel": data_parallel}[
                MODE
            ]()
        )
    )
