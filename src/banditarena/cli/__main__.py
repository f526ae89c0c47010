from banditarena.cli import main

main()
