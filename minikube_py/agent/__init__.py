"""The node agent: runs the pods bound to this node through a Runtime and reports their status."""

from minikube_py.agent.agent import AgentConfig, NodeAgent, PodRecord
from minikube_py.agent.ipam import InMemoryIpam, Ipam

__all__ = ["AgentConfig", "InMemoryIpam", "Ipam", "NodeAgent", "PodRecord"]
