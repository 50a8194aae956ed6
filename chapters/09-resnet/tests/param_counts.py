"""PyTorch's parameter counts for the networks of chapter 09's tests.

Builds torchvision-style BasicBlock / Bottleneck networks with the same
configurations as `ResNetConfig` (3x3 stride-1 stem conv + BN, the blocks,
global average pooling, Linear) and prints their parameter counts and
state-dict names, which `tests/resnet.rs` compares with ours. Run with any
Python that has PyTorch:

    python chapters/09-resnet/tests/param_counts.py
"""
import torch, torch.nn as nn, torch.nn.functional as F
class BasicBlock(nn.Module):
    def __init__(s, i, o, stride=1, residual=True):
        super().__init__()
        s.conv1 = nn.Conv2d(i, o, 3, stride, 1, bias=False); s.bn1 = nn.BatchNorm2d(o)
        s.conv2 = nn.Conv2d(o, o, 3, 1, 1, bias=False); s.bn2 = nn.BatchNorm2d(o)
        s.downsample = None
        if residual and (stride != 1 or i != o):
            s.downsample = nn.Sequential(nn.Conv2d(i, o, 1, stride, bias=False), nn.BatchNorm2d(o))
class Bottleneck(nn.Module):
    def __init__(s, i, o, stride=1):
        super().__init__(); w = o // 4
        s.conv1 = nn.Conv2d(i, w, 1, bias=False); s.bn1 = nn.BatchNorm2d(w)
        s.conv2 = nn.Conv2d(w, w, 3, stride, 1, bias=False); s.bn2 = nn.BatchNorm2d(w)
        s.conv3 = nn.Conv2d(w, o, 1, bias=False); s.bn3 = nn.BatchNorm2d(o)
        s.downsample = None
        if stride != 1 or i != o:
            s.downsample = nn.Sequential(nn.Conv2d(i, o, 1, stride, bias=False), nn.BatchNorm2d(o))
def net(cin, stem, blocks, classes, kind=BasicBlock, residual=True):
    m = nn.Module()
    m.conv1 = nn.Conv2d(cin, stem, 3, 1, 1, bias=False); m.bn1 = nn.BatchNorm2d(stem)
    m.blocks = nn.Sequential(*[kind(i, o, s) if kind is Bottleneck else kind(i,o,s,residual) for i, o, s in blocks])
    m.fc = nn.Linear(blocks[-1][1], classes)
    return m
def count(m): return sum(p.numel() for p in m.parameters())
mn = [(16,16,1),(16,16,1),(16,32,2),(32,32,1),(32,64,2),(64,64,1)]
print("resnet14_mnist", count(net(1,16,mn,10)), "plain", count(net(1,16,mn,10,residual=False)))
dg = [(8,8,1),(8,8,1),(8,16,1),(16,16,1)]
print("resnet14_digits", count(net(1,8,dg,10)))
cf = [(16,16,1)]*3 + [(16,32,2),(32,32,1),(32,32,1),(32,64,2),(64,64,1),(64,64,1)]
print("resnet20_cifar10", count(net(3,16,cf,10)), "cifar100", count(net(3,16,cf,100)))
b = Bottleneck(16, 64, 2); print("bottleneck16_64_s2", count(b), [n for n,_ in b.state_dict().items()])
b = Bottleneck(64, 64, 1); print("bottleneck64_64_s1", count(b))
print("basic4_8_s2", count(BasicBlock(4,8,2)), list(BasicBlock(4,8,2).state_dict().keys()))
for d in (14,26,50):
    n=(d-2)//2
    print("depth", d, count(net(1,16,[(16,16,1)]*n,10)), "plain", count(net(1,16,[(16,16,1)]*n,10,residual=False)))
m = net(1,16,mn,10); print(list(m.state_dict().keys())[:12], len(m.state_dict()))
