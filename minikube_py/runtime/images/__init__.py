"""Images: references, registries and the node's content store (docs/images.md).

`reference` parses image names as Docker does, `auth`/`hosts`/`registry` fetch manifests and
blobs from OCI registries, `platforms` picks a manifest from an index, and `store` keeps what
was pulled, loaded or built. Everything else imports from here; `ContainerRuntimeError` is here
too because the store raises it (InvalidImageName, ErrImageNeverPull) to callers such as the CLI.
"""

from minikube_py.runtime.types import ContainerRuntimeError  # noqa: F401

from minikube_py.runtime.images.store import (  # noqa: F401
    Image,
    ImageRow,
    ImageStore,
    ImageStoreError,
    OciImageConfig,
    format_size,
    normalize_reference,
    resolve_user,
    short_id,
)
