"""Held-out sets of real photographs to judge the defaults on: written in
the published formats from photographs (steel, damage, detection,
textures), or converted from published real defect datasets to the MVTec
AD layout (magnetic_tile, deep_pcb, ball_screw)."""
