"""The Hatrac model: resources, ACL rules and operations, with no web framework.

``service.Hatrac`` is the entry point; ``directory`` holds names and policy
in SQL; ``storage`` holds bytes.
"""
