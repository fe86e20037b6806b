"""What cloud-init leaves on a server for deploys, put into a test host's folder: /etc/autoenroll
(the deploy user's, 0750, with the image name) and the role's deploy script. The test host shares
this machine's filesystem, so the real paths are not ours to write."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

from stacks.host_role import DEPLOY_SCRIPT, DEPLOY_USER, shipped_script


def install_role_files(folder: Path, app_image: str) -> tuple[Path, Path]:
    """(the /etc/autoenroll stand-in, the deploy script) under `folder`."""
    root = folder / "etc-autoenroll"
    root.mkdir(exist_ok=True)
    (root / "image").write_text(f"APP_IMAGE={app_image}\n")
    user = pwd.getpwnam(DEPLOY_USER)
    os.chown(root, user.pw_uid, user.pw_gid)
    root.chmod(0o750)
    script = folder / "autoenroll-deploy"
    script.write_text(shipped_script(DEPLOY_SCRIPT))  # what the user data gives a server
    script.chmod(0o755)
    return root, script
