"""Files the app commands read (a generator checkpoint, a class-classifier file), and a thread setting."""

import contextlib

import torch

from genmodels.metrics.classifier import DomainClassifier, LeNet5, save_classifier


def digit_classifier_file(path, data_size=16, num_classes=10, channels=1, seed=0):
    """An (untrained) LeNet class classifier saved like `genmodels train-classifier` does."""
    meta = {"architecture": "lenet5", "image_size": 32, "channels": channels, "num_classes": num_classes,
            "dataset": "digits", "data_image_size": data_size}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = LeNet5(channels, num_classes, 32)
    save_classifier(DomainClassifier(net, meta), path)
    return path


def save_model_checkpoint(model, path):
    """A checkpoint `genmodels.checkpoints.load_model` reads (what `genmodels fit` writes, minus optimizer state)."""
    cls = type(model)
    torch.save({
        "genmodels": {"model_class": f"{cls.__module__}.{cls.__qualname__}", "iteration": 7},
        "hyper_parameters": dict(model.hparams),
        "state_dict": model.state_dict(),
    }, path)
    return path


@contextlib.contextmanager
def single_thread():
    """Run tiny networks on one thread: two threads cost several times the CPU for these sizes."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
