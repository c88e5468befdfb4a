"""The seven Keras optimizers with a cyclical learning rate.

Each class is `cyclical(keras.optimizers.X)`: the Keras optimizer of the same
name with the `CyclicalOptimizer` mixin in front (same arguments, same
defaults, same update rule).
"""

import keras

from clr_optimizers._factory import cyclical

SGD = cyclical(keras.optimizers.SGD)
RMSprop = cyclical(keras.optimizers.RMSprop)
Adagrad = cyclical(keras.optimizers.Adagrad)
Adadelta = cyclical(keras.optimizers.Adadelta)
Adam = cyclical(keras.optimizers.Adam)
Adamax = cyclical(keras.optimizers.Adamax)
Nadam = cyclical(keras.optimizers.Nadam)

OPTIMIZERS = (SGD, RMSprop, Adagrad, Adadelta, Adam, Adamax, Nadam)
