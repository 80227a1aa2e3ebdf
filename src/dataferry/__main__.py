from dataferry.cli.main import main

main()
