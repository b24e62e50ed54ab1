from support.fake_upstream.app import main

main()
