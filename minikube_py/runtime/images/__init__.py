"""Images: references, registries and the node's content store (docs/images.md).

`reference` parses image names as Docker does, `auth`/`hosts`/`registry` fetch manifests and
blobs from OCI registries, `platforms` picks a manifest from an index, and `store` keeps what
was pulled, loaded or built. Everything else imports from here.
"""

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
