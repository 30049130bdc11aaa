#!/usr/bin/python3
"""Serve the JupyterLab 4 frontend built by test/lab/build.sh with Debian's jupyterlab_server (LabServerApp 2.16)
on jupyter_server 1.23 -- the way jupyterlab/examples/app/main.py does, plus:
  * MathJax 2.7 from Debian's libjs-mathjax (/usr/share/javascript/mathjax) when present;
  * no token/password (loopback only), terminals off, the "Jupyter news" toast off (no internet);
  * JupyterLab 4 asks jupyter_server >= 2 for /api/me and /api/events/subscribe: stubs answer them here
    (JupyterLab 4 officially wants jupyter_server >= 2.4; kernels connect over the legacy WebSocket protocol).

usage: /usr/bin/python3 lab_server.py --port PORT --root DIR --state DIR --app DIR
env:   JUPYTER_PATH must hold the kernelspec; JUPYTER_RUNTIME_DIR where connection files go.
"""
import argparse
import json
import os
import sys

ap = argparse.ArgumentParser()
ap.add_argument("--port", type=int, default=8899)
ap.add_argument("--root", required=True)
ap.add_argument("--app", required=True, help="the built app (test/lab/build.sh prints it)")
ap.add_argument("--state", required=True, help="user settings + workspaces")
args, rest = ap.parse_known_args()

# Keep config files on disk from changing this server (as the upstream example does).
os.environ["JUPYTER_NO_CONFIG"] = "1"
# Runtime files (cookie secret, kernel connection files) under /tmp, not in ~/.local.
os.environ.setdefault("JUPYTER_RUNTIME_DIR", os.path.join(args.state, "runtime"))

from jupyterlab_server import LabServerApp  # noqa: E402
from tornado import web, websocket  # noqa: E402

APP = os.path.abspath(args.app)
BUILD = os.path.join(APP, "build")
MATHJAX_DIR = "/usr/share/javascript/mathjax"
with open(os.path.join(APP, "package.json")) as f:
    APP_VERSION = json.load(f)["version"]
LAB_MAJOR = int(APP_VERSION.split(".")[0])


class MeStub(web.RequestHandler):
    """JupyterLab 4 asks jupyter_server >= 2's identity API (GET /api/me); 1.23 has none."""

    def get(self):
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({
            "identity": {"username": "user", "name": "user", "display_name": "user", "initials": "U",
                         "avatar_url": None, "color": None},
            "permissions": {},
        }))


class EventsStub(websocket.WebSocketHandler):
    """JupyterLab 4 subscribes to jupyter_server >= 2's event bus; accept and stay silent."""

    def check_origin(self, origin):
        return True


def _jupyter_server_extension_points():
    return [{"module": __name__, "app": RealLab}]


class RealLab(LabServerApp):
    name = __name__
    extension_url = "/lab"
    default_url = "/lab"
    load_other_extensions = False
    app_name = "JupyterLab"
    app_version = APP_VERSION
    # overrides.json here changes plugin defaults; ours turns off the news/update checks (no internet).
    app_settings_dir = os.path.join(args.state, "app_settings")
    schemas_dir = os.path.join(BUILD, "schemas")
    static_dir = BUILD
    templates_dir = os.path.join(APP, "templates")
    themes_dir = os.path.join(BUILD, "themes")
    user_settings_dir = os.path.join(args.state, "user_settings")
    workspaces_dir = os.path.join(args.state, "workspaces")

    def initialize_settings(self):
        super().initialize_settings()
        settings = self.serverapp.web_app.settings
        settings["terminals_available"] = False
        if os.path.exists(os.path.join(MATHJAX_DIR, "MathJax.js")):
            settings["mathjax_url"] = "/mathjax-local/MathJax.js"

    def initialize_handlers(self):
        super().initialize_handlers()
        if os.path.isdir(MATHJAX_DIR):
            self.serverapp.web_app.add_handlers(
                ".*$", [(r"/mathjax-local/(.*)", web.StaticFileHandler, {"path": MATHJAX_DIR})]
            )
        import jupyter_server

        if LAB_MAJOR >= 4 and int(jupyter_server.__version__.split(".")[0]) < 2:
            self.serverapp.web_app.add_handlers(
                ".*$", [(r"/api/me", MeStub), (r"/api/events/subscribe", EventsStub)]
            )
            self.log.warning("JupyterLab %s on jupyter_server %s: unsupported pairing, /api/me and "
                             "/api/events/subscribe are stubs", APP_VERSION, jupyter_server.__version__)


OVERRIDES = {
    # Otherwise a toast asks "Would you like to receive official Jupyter news?" and covers the corner.
    "@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False}
}

if __name__ == "__main__":
    os.makedirs(args.root, exist_ok=True)
    os.makedirs(os.path.join(args.state, "app_settings"), exist_ok=True)
    with open(os.path.join(args.state, "app_settings", "overrides.json"), "w") as f:
        json.dump(OVERRIDES, f, indent=2)
    sys.argv = [sys.argv[0]] + [
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={args.port}",
        "--ServerApp.port_retries=0",
        "--ServerApp.open_browser=False",
        "--ServerApp.allow_root=True",
        "--ServerApp.token=",
        "--ServerApp.password=",
        f"--ServerApp.root_dir={args.root}",
    ] + rest
    RealLab.launch_instance()
