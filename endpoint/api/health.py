from django.http import JsonResponse


async def live(request):
    return JsonResponse({"status": "ok"})
