"""Procedural geometry for the hall: boxes, cylinders, spheres and tiled floors.

Everything is vertex-coloured with normals, so it lights under the fixed-function pipeline
of the software renderer (which has no shaders) as well as under OpenGL. Boxes sit on their
base: their origin is the centre of the bottom face, so placing one on the floor is z = 0.
"""

from __future__ import annotations

import math

from panda3d.core import (
    Geom,
    GeomNode,
    GeomTriangles,
    GeomVertexData,
    GeomVertexFormat,
    GeomVertexWriter,
    NodePath,
)

Color = tuple[float, float, float, float]
Vec = tuple[float, float, float]


class _Mesh:
    """Collects triangles, then becomes one GeomNode."""

    def __init__(self, name: str) -> None:
        self.data = GeomVertexData(name, GeomVertexFormat.getV3n3c4(), Geom.UHStatic)
        self.vertex = GeomVertexWriter(self.data, "vertex")
        self.normal = GeomVertexWriter(self.data, "normal")
        self.color = GeomVertexWriter(self.data, "color")
        self.tris = GeomTriangles(Geom.UHStatic)
        self.count = 0  # vertices written so far
        self.name = name

    def quad(self, corners: list[Vec], normal: Vec, color: Color) -> None:
        """A quad from four corners in counter-clockwise order seen from the front."""
        for corner in corners:
            self.vertex.addData3(*corner)
            self.normal.addData3(*normal)
            self.color.addData4(*color)
        n = self.count
        self.tris.addVertices(n, n + 1, n + 2)
        self.tris.addVertices(n, n + 2, n + 3)
        self.count += 4

    def triangle(self, corners: list[Vec], normals: list[Vec], color: Color) -> None:
        for corner, normal in zip(corners, normals, strict=True):
            self.vertex.addData3(*corner)
            self.normal.addData3(*normal)
            self.color.addData4(*color)
        self.tris.addVertices(self.count, self.count + 1, self.count + 2)
        self.count += 3

    def node(self) -> NodePath:
        geom = Geom(self.data)
        geom.addPrimitive(self.tris)
        node = GeomNode(self.name)
        node.addGeom(geom)
        return NodePath(node)


def box(name: str, size: Vec, color: Color) -> NodePath:
    """A box ``size`` = (width x, depth y, height z) standing on its base at the origin."""
    w, d, h = size[0] / 2, size[1] / 2, size[2]
    mesh = _Mesh(name)
    faces: list[tuple[Vec, list[Vec]]] = [
        ((0, -1, 0), [(-w, -d, 0), (w, -d, 0), (w, -d, h), (-w, -d, h)]),
        ((0, 1, 0), [(w, d, 0), (-w, d, 0), (-w, d, h), (w, d, h)]),
        ((1, 0, 0), [(w, -d, 0), (w, d, 0), (w, d, h), (w, -d, h)]),
        ((-1, 0, 0), [(-w, d, 0), (-w, -d, 0), (-w, -d, h), (-w, d, h)]),
        ((0, 0, 1), [(-w, -d, h), (w, -d, h), (w, d, h), (-w, d, h)]),
        ((0, 0, -1), [(-w, d, 0), (w, d, 0), (w, -d, 0), (-w, -d, 0)]),
    ]
    for normal, corners in faces:
        mesh.quad(corners, normal, color)
    return mesh.node()


def cylinder(name: str, radius: float, height: float, color: Color, segments: int = 16,
             top_radius: float | None = None) -> NodePath:
    """An upright cylinder (or a cone frustum with ``top_radius``) on its base at the origin."""
    top = radius if top_radius is None else top_radius
    mesh = _Mesh(name)
    for i in range(segments):
        a0, a1 = (2 * math.pi * i / segments, 2 * math.pi * (i + 1) / segments)
        c0, s0, c1, s1 = math.cos(a0), math.sin(a0), math.cos(a1), math.sin(a1)
        mid = (a0 + a1) / 2
        mesh.quad([(radius * c0, radius * s0, 0), (radius * c1, radius * s1, 0),
                   (top * c1, top * s1, height), (top * c0, top * s0, height)],
                  (math.cos(mid), math.sin(mid), 0), color)
        mesh.triangle([(0, 0, height), (top * c0, top * s0, height), (top * c1, top * s1, height)],
                      [(0, 0, 1)] * 3, color)
        mesh.triangle([(0, 0, 0), (radius * c1, radius * s1, 0), (radius * c0, radius * s0, 0)],
                      [(0, 0, -1)] * 3, color)
    return mesh.node()


def sphere(name: str, radius: float, color: Color, rings: int = 8, segments: int = 12
           ) -> NodePath:
    """A sphere centred on the origin, with smooth normals."""
    mesh = _Mesh(name)

    def point(ring: int, seg: int) -> Vec:
        theta, phi = math.pi * ring / rings, 2 * math.pi * seg / segments
        return (math.sin(theta) * math.cos(phi), math.sin(theta) * math.sin(phi), math.cos(theta))

    for r in range(rings):
        for s in range(segments):
            corners = [point(r, s), point(r + 1, s), point(r + 1, s + 1), point(r, s + 1)]
            scaled = [(x * radius, y * radius, z * radius) for x, y, z in corners]
            # at the poles one of the two triangles has no area: leave it out
            if r < rings - 1:
                mesh.triangle(scaled[:3], corners[:3], color)
            if r > 0:
                mesh.triangle([scaled[0], scaled[2], scaled[3]],
                              [corners[0], corners[2], corners[3]], color)
    return mesh.node()


def tiled_floor(name: str, width: float, depth: float, tile: float,
                colors: tuple[Color, Color]) -> NodePath:
    """A floor of square tiles in two alternating colours, centred on the origin.

    One quad per tile also gives per-vertex lighting enough vertices to show point lights.
    """
    mesh = _Mesh(name)
    nx, ny = max(1, round(width / tile)), max(1, round(depth / tile))
    tw, td = width / nx, depth / ny
    for i in range(nx):
        for j in range(ny):
            x0, y0 = -width / 2 + i * tw, -depth / 2 + j * td
            mesh.quad([(x0, y0, 0), (x0 + tw, y0, 0), (x0 + tw, y0 + td, 0), (x0, y0 + td, 0)],
                      (0, 0, 1), colors[(i + j) % 2])
    return mesh.node()


def panel(name: str, width: float, height: float, color: Color, columns: int = 1,
          rows: int = 1) -> NodePath:
    """A flat upright rectangle facing -y (towards a viewer in front of it), bottom at z = 0,
    split into ``columns`` x ``rows`` quads so that lights shade it."""
    mesh = _Mesh(name)
    cw, rh = width / columns, height / rows
    for i in range(columns):
        for j in range(rows):
            x0, z0 = -width / 2 + i * cw, j * rh
            mesh.quad([(x0, 0, z0), (x0 + cw, 0, z0), (x0 + cw, 0, z0 + rh), (x0, 0, z0 + rh)],
                      (0, -1, 0), color)
    return mesh.node()
