from postbote.cli.main import main

main()
