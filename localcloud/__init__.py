"""Local stand-ins for OSS, IoT Platform, MNS and Function Compute.

Each service speaks the real wire protocol and checks signatures, so the real SDKs are
exercised over HTTP on 127.0.0.1. Used by the demo and the tests; never shipped in the
function layer.
"""
