"""Models by registry name: ``names()``, ``create(name, num_classes=..., in_channels=...)``."""

# Importing the model modules registers them.
from caltrain.models import cnn as _cnn  # noqa: F401
from caltrain.models import densenet as _densenet  # noqa: F401
from caltrain.models import mlp as _mlp  # noqa: F401
from caltrain.models import resnet as _resnet  # noqa: F401
from caltrain.models import resnet_cifar as _resnet_cifar  # noqa: F401
from caltrain.models import resnet_fpn as _resnet_fpn  # noqa: F401
from caltrain.models import unet as _unet  # noqa: F401
from caltrain.models import vgg as _vgg  # noqa: F401
from caltrain.models import wide_resnet as _wide_resnet  # noqa: F401
from caltrain.models.heads import AbstentionHead, with_abstention_head
from caltrain.models.registry import MODELS, create, names, num_parameters

__all__ = ["AbstentionHead", "MODELS", "create", "names", "num_parameters", "with_abstention_head"]
