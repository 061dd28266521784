"""The node agent: runs the pods bound to this node through a Runtime and reports their status."""

from minikube_py.agent.agent import AgentConfig, NodeAgent
from minikube_py.agent.ipam import InMemoryIpam, Ipam
from minikube_py.agent.pod import PodRecord

__all__ = ["AgentConfig", "InMemoryIpam", "Ipam", "NodeAgent", "PodRecord"]
