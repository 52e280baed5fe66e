# mod_wsgi entry point of Hatrac: point WSGIScriptAlias at this file.
# The logic (config lookup, full paths for every alias) is in hatrac/wsgi.py;
# 'hatrac apache-config' prints a complete Apache configuration using it.
from hatrac.wsgi import application  # noqa: F401
