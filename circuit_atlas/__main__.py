from circuit_atlas.cli import main

main(prog_name="circuit-atlas")
