from kdtts.cli import main

main()
