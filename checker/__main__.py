from checker.launch import main

main()
