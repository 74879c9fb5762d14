"""Serving supernets: ``SupernetServer`` replicas (Ray actors holding weights from an object ref),
``ServerPool`` (routing, hot swap, restart, evaluation cache) and the in-process ``SubnetScorer``.

Importing this package does not import torch; the replicas and the scorer do when they start.
"""
from raynas.serving.cache import EvalCache, LRUCache
from raynas.serving.pool import ServerPool
from raynas.serving.router import CACHED, REPLICA, PoolConfig, PoolError, PoolRouter
from raynas.serving.server import VERSION, SupernetServer
from raynas.serving.spec import EvalData, ModelSpec, build_model

__all__ = ["CACHED", "REPLICA", "VERSION", "EvalCache", "EvalData", "LRUCache", "ModelSpec", "PoolConfig",
           "PoolError", "PoolRouter", "ServerPool", "SupernetServer", "build_model"]
